"""The site's own pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """The site's home page, which links to the tools."""
    return render(request, "home.html")
