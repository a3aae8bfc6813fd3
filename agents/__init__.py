"""Agent workspace: scripts, dispositions, agent state."""
