"""Pure typed data shared by every layer. No I/O here."""
