"""The JSON documents page, a search of the signed-in user's JSON documents by a JSON path; and
the data files page's *Convert* action. Anonymous visitors are asked to sign in.

The search is a GET (a page view changes nothing); converting is a POST with Django's CSRF
check, which keeps a new data file and shows the data files page again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from gristmill.app.service import default_service
from gristmill.errors import TooLargeError
from gristmill.server import conversions, datafiles, documents
from gristmill.server.access import session_caller
from gristmill.server.api.documents import document_url
from gristmill.server.api.schemas import datafile_links
from gristmill.server.web.views import HttpResponseSeeOther, error_page, pages

PER_PAGE = 50


class SearchForm(forms.Form):
    """A JSON path, and the value wanted there."""

    path = forms.CharField(
        label="JSON path",
        max_length=documents.MAX_PATH_LENGTH,
        help_text="Keys separated by dots, such as meta.source; a number is a position in an "
        "array (parties.0.name).",
    )
    value = forms.CharField(
        label="Value",
        required=False,
        help_text='Read as JSON when it is JSON (3, true, null, "3"), else as text. Leave it '
        "empty to find the documents that have the path at all.",
    )


@require_safe
@never_cache
@pages
def document_search(request: HttpRequest) -> HttpResponse:
    """The search form and, once a path is given, the data files whose JSON document has the
    value at the path, newest first (400 with the problem at the path field for a path that
    cannot be read)."""
    caller = session_caller(request)
    datafiles.owner_id(caller)  # anonymous visitors are asked to sign in
    form = SearchForm(request.GET if "path" in request.GET else None)
    context: dict[str, Any] = {"caller": caller, "form": form, "rows": None}
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    elif form.is_bound:
        path, value = form.cleaned_data["path"], form.cleaned_data["value"] or None
        try:
            files = documents.search(caller, path, value)
        except documents.JsonPathError as error:
            form.add_error("path", str(error))
            status = 400
        except documents.JsonValueError as error:
            form.add_error("value", str(error))
            status = 400
        else:
            page = Paginator(files, PER_PAGE).get_page(request.GET.get("page"))
            context["page"] = page
            context["query"] = urlencode({"path": path, "value": value or ""})
            context["rows"] = [
                {
                    "file": datafile,
                    "document_url": document_url(str(datafile.pk)),
                    **datafile_links(str(datafile.pk)),
                }
                for datafile in page.object_list
            ]
    return render(request, "gristmill/documents.html", context, status=status)


@require_POST
@pages
def datafile_convert(request: HttpRequest, file_id: str) -> HttpResponse:
    """Convert a data file to the datatype posted as ``to`` (json, csv or xlsx), keep the
    result as a new data file and show the data files page again (303); a page saying why
    (400, or 413 for a result over the limit) otherwise."""
    caller = session_caller(request)
    datafiles.owner_id(caller)
    service = default_service()
    try:
        conversions.convert(caller, file_id, request.POST.get("to", ""), service=service)
    except conversions.ConversionError as error:
        return error_page(request, 400, str(error))
    except TooLargeError:
        message = datafiles.limit_message(service.settings.datafile_max_size)
        return error_page(request, 413, f"the converted {message.removeprefix('the ')}")
    return HttpResponseSeeOther(reverse("gristmill-web:datafiles"))
