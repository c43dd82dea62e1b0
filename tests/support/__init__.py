"""Helpers the tests share (no tests here): fixture files, tiny model folders, a server in a
thread, an Ogg reader. Pytest fixtures live in the conftest.py files."""
