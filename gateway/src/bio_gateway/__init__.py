"""Gateway of the biometric identity platform."""
