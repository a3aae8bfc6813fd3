"""Quality assurance: scorecards and review scoring (`scorecard`), which calls to review (`sampling`)."""
