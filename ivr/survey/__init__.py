"""Satisfaction survey (1–5): answers stored with the call, its branch, unit and answering phone.

Here: storing an answer (:func:`ivr.survey.store.record_answer`, what an IVR survey node calls
after the desk hangs up) and importing Zalo results (:func:`ivr.survey.store.import_rows`).
Figures for the reports: ivr.cases.figures. The survey sent over Zalo after the call and its
answers coming back: :mod:`ivr.survey.zalo`. Not here: the call flow (ivr.flow.survey).
"""
