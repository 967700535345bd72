"""Signed webhooks: accounts register endpoints; platform events are delivered with retries."""
