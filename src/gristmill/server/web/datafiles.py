"""The data files page: a signed-in user's data files (everyone's for staff), a form to upload
one more, and a button to delete each. Anonymous visitors are asked to sign in.

Deleting is a POST (with Django's CSRF check), never a link: a page view changes nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from gristmill.app.service import default_service
from gristmill.errors import TooLargeError
from gristmill.server import conversions, datafiles
from gristmill.server.access import session_caller
from gristmill.server.api.schemas import datafile_links
from gristmill.server.statuses import status_of
from gristmill.server.web.views import HttpResponseSeeOther, pages

PER_PAGE = 50


class UploadForm(forms.Form):
    """One file to keep."""

    file = forms.FileField(label="File", allow_empty_file=True)


@require_http_methods(["GET", "POST"])
@never_cache
@pages
def datafile_list(request: HttpRequest) -> HttpResponse:
    """The caller's data files, newest first, with an upload form (GET); uploading (POST)
    stores the file and shows the list again (303), or shows the form's problem (400, or 413
    for a file over the limit)."""
    caller = session_caller(request)
    datafiles.owner_id(caller)  # anonymous visitors are asked to sign in
    service = default_service()
    limit = service.settings.datafile_max_size
    status = 200
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                datafiles.create_from_upload(caller, upload, service=service)
            except TooLargeError as error:
                form.add_error("file", datafiles.limit_message(limit))
                status = status_of(error)
            else:
                return HttpResponseSeeOther(reverse("gristmill-web:datafiles"))
    else:
        form = UploadForm()
    page = Paginator(datafiles.visible(caller), PER_PAGE).get_page(request.GET.get("page"))
    rows: list[dict[str, Any]] = [
        {"file": datafile, **datafile_links(str(datafile.pk))} for datafile in page.object_list
    ]
    context = {
        "caller": caller,
        "form": form,
        "page": page,
        "rows": rows,
        "max_size": limit,
        "targets": conversions.TARGETS,
    }
    return render(request, "gristmill/datafiles.html", context, status=status)


@require_POST
@pages
def datafile_delete(request: HttpRequest, file_id: str) -> HttpResponse:
    """Delete a data file (POST, from the list's button) and show the list again (303)."""
    caller = session_caller(request)
    if not caller.signed_in:
        return redirect_to_login(reverse("gristmill-web:datafiles"))
    datafiles.delete(caller, file_id, service=default_service())
    return HttpResponseSeeOther(reverse("gristmill-web:datafiles"))
