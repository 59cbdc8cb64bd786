"""AMI: watching the phones (panoramisk)."""
