"""The sandbox PBX: AMI server and FastAGI caller driven by a call model (dev, tests, demo, benchmarks)."""
