"""Providers: pure codecs per service plus the shared HTTP shell; the mock for offline use."""
