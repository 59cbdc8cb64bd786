"""The exit codes every `ivr` command uses, and their explanation for `ivr --help`."""

from __future__ import annotations

DONE = 0  # the command did what was asked
FAILED = 1  # it ran and failed: a check found problems, the database, network or disk failed
USAGE = 2  # it could not start: a bad flag, or a settings, routing or manifest file is wrong
INTERRUPTED = 130  # stopped with Ctrl-C

EPILOG = """\
mã thoát (mọi lệnh):
  0    xong
  1    thất bại: kiểm tra thấy lỗi, lỗi cơ sở dữ liệu, mạng hoặc đĩa
  2    sai cách dùng hoặc cấu hình: tham số sai, tệp cấu hình, định tuyến
       hoặc danh mục lời nhắc không hợp lệ
  130  bị ngắt (Ctrl-C)
"""
