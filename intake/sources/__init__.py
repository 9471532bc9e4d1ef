"""Mailbox sources: where raw mail comes from and where it goes once recorded."""
