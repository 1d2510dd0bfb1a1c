"""Who may send spans, as which tenant, how fast, and over which encrypted channels."""
