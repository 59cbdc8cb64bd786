"""Satisfaction survey (a 2–5 point scale): answers stored with the call, branch, unit and phone.

Here: storing an answer (:func:`ivr.survey.store.record_answer`, what an IVR survey node calls
after the desk hangs up) and importing Zalo results (:func:`ivr.survey.store.import_rows`).
Figures for the reports: ivr.cases.figures. The survey sent over Zalo after the call and its
answers coming back: :mod:`ivr.survey.zalo`; whether the calls are offered it (Zalo configured):
:mod:`ivr.survey.offer`. Not here: the call flow (ivr.flow.survey).
"""
