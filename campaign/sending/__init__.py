"""The paced send: plan, sender loop, pacing, retry decisions and the callers."""
