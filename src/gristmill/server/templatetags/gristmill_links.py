"""Template tags for links that depend on the site gristmill runs in: ``{% load
gristmill_links %}``."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.shortcuts import resolve_url

register = template.Library()


@register.simple_tag
def sign_in_url() -> str:
    """Where people sign in: the site's ``LOGIN_URL`` (gristmill's own page when stand-alone,
    the host project's when gristmill is one of its apps)."""
    return str(resolve_url(settings.LOGIN_URL))
