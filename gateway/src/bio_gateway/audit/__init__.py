"""Tamper-evident audit trail of biometric operations and admin actions (ids and outcomes, never data)."""
