"""The Django app: models, the store, and (later) web pages, REST API and admin.

This is the only package that imports Django.
"""
