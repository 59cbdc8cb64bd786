"""Test doubles shipped with the package: `ivr routing simulate` and the tests use them."""
