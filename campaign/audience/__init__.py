"""Who may be messaged, and when: sending windows, deadlines, do-not-send lists."""
