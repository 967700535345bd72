"""Test support of the platform, kept out of the runtime packages.

``bio_testing.shared`` (service apps, identities, images, job polling), ``bio_testing.gateway``
(accounts and tokens through the gateway) and ``bio_testing.contour_mask`` (landmark files and masks).
A package rather than conftest fixtures because the suites run in pytest's importlib mode, where a
test module cannot import helpers from a conftest by name. Never imports pytest.
"""
