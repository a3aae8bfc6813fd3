"""The dial ledger's state machine: typed AMI events in, attempt outcomes out (pure)."""
