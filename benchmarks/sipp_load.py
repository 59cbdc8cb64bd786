"""SIPp under load: many callers from one SIPp process (each call its own caller number, so a
desk's INVITE can be matched to the caller's key in a packet capture), and the desk phones of a
branch as SIPp servers. Keys go as RFC 4733 events (the captures of tests/sipp.py) or SIP INFO.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.sipp import rfc4733_pcap

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
"""

_FROM = '"{prefix}[call_number]" <sip:{prefix}[call_number]@[local_ip]:[local_port]>'

_INVITE = """
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_};tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:{prefix}[call_number]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_};tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:{prefix}[call_number]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

_INFO = """
  <send retrans="500">
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_};tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 INFO
      Contact: sip:{prefix}[call_number]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=200
    ]]>
  </send>
  <recv response="200"/>
"""

_BYE = """
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_};tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Contact: sip:{prefix}[call_number]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

_RESPONSE = """
  <send{retrans}>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{body}    ]]>
  </send>
"""

_SDP = """      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
"""

_NO_BODY = "      Content-Length: 0\n"

_OK_TO_REQUEST = """
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""

# the desk that does not answer: rings until Asterisk cancels it (the other desk answered)
_CANCELLED = """
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="cseq"/>
    </action>
  </recv>
{ringing}
  <recv request="CANCEL"/>
{ok}
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$cseq] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def caller_xml(prefix: str, key_at_ms: int, bye_at_ms: int, folder: Path, rfc4733: bool) -> str:
    """Answered, presses 4 ``key_at_ms`` after the answer, hangs up at ``bye_at_ms``."""
    from_ = _FROM.format(prefix=prefix)
    out = [_HEAD.format(name="loaded caller"), _INVITE.format(from_=from_, prefix=prefix)]
    out.append(f'  <pause milliseconds="{key_at_ms}"/>\n')
    now = key_at_ms
    if rfc4733:
        pcap = folder / "key-4.pcap"
        ms = rfc4733_pcap(pcap, "4")
        out.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n')
        out.append(f'  <pause milliseconds="{ms}"/>\n')
        now += ms
    else:
        out.append(_INFO.format(from_=from_, prefix=prefix, digit="4"))
    out.append(f'  <pause milliseconds="{max(bye_at_ms - now, 0)}"/>\n')
    out.append(_BYE.format(from_=from_, prefix=prefix))
    return "".join(out)


def answering_desk_xml(ring_ms: int) -> str:
    """Rings ``ring_ms``, answers, talks until the caller's side hangs up."""
    return "".join(
        [
            _HEAD.format(name="desk: answers"),
            '  <recv request="INVITE" crlf="true"/>\n',
            _RESPONSE.format(retrans="", status="180 Ringing", body=_NO_BODY),
            f'  <pause milliseconds="{ring_ms}"/>\n',
            _RESPONSE.format(retrans=' retrans="500"', status="200 OK", body=_SDP),
            '  <recv request="ACK" crlf="true"/>\n',
            '  <recv request="BYE"/>\n',
            _OK_TO_REQUEST,
            "</scenario>\n",
        ]
    )


def ringing_desk_xml() -> str:
    ringing = _RESPONSE.format(retrans="", status="180 Ringing", body=_NO_BODY)
    return _HEAD.format(name="desk: rings") + _CANCELLED.format(ringing=ringing, ok=_OK_TO_REQUEST)


@dataclass(frozen=True)
class Counts:
    created: int
    successful: int
    failed: int


class SippProcess:
    """One SIPp process with its statistics file; stopped by :meth:`stop` whatever happens."""

    def __init__(self, folder: Path, name: str, xml: str, args: list[str], media_port: int):
        self.folder = folder
        self.name = name
        self.stats = folder / f"{name}.csv"
        scenario = folder / f"{name}.xml"
        scenario.write_text(xml)
        self.proc = subprocess.Popen(
            [
                "sipp",
                *args,
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-mp",
                str(media_port),
                "-nostdin",
                "-trace_stat",
                "-stf",
                str(self.stats),
                "-fd",
                "1",
                "-trace_err",
                "-error_file",
                str(folder / f"{name}.err"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 10.0) -> None:
        """Soft exit (SIGUSR1: calls in progress finish), then SIGKILL after ``grace`` s."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR1)
            if not self.wait(grace):
                self.proc.kill()
                self.proc.wait()

    def counts(self) -> Counts:
        """The cumulative counters of the last statistics line SIPp wrote."""
        deadline = time.monotonic() + 5
        while not self.stats.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self.stats.exists():
            return Counts(0, 0, 0)
        with self.stats.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        if not rows:
            return Counts(0, 0, 0)
        last = rows[-1]
        return Counts(
            int(last["TotalCallCreated"]),
            int(last["SuccessfulCall(C)"]),
            int(last["FailedCall(C)"]),
        )

    def errors(self) -> str:
        err = self.folder / f"{self.name}.err"
        return err.read_text(errors="replace")[-2000:] if err.exists() else ""
