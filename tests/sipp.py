"""SIPp for the real-Asterisk tests: the driver lives in ivr/sim/sipp.py (the demo's
`--asterisk` calls and the load benchmarks use it too)."""

from ivr.sim.sipp import (
    KEY_GAP_MS,
    KEY_MS,
    PCAPS,
    SPEECH,
    Bye,
    Keys,
    Quiet,
    Sipp,
    Step,
    Talk,
    caller_xml,
    desk_xml,
    pcap_ms,
    rfc4733_pcap,
    silence_pcap,
)

__all__ = [
    "KEY_GAP_MS",
    "KEY_MS",
    "PCAPS",
    "SPEECH",
    "Bye",
    "Keys",
    "Quiet",
    "Sipp",
    "Step",
    "Talk",
    "caller_xml",
    "desk_xml",
    "pcap_ms",
    "rfc4733_pcap",
    "silence_pcap",
]
