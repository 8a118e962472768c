"""A local SendTextMessage endpoint that speaks the real wire protocol (a program of its own)."""
