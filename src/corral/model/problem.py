"""The body of every error answer: an RFC 9457 problem document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    """One invalid part of a request, as the 422 answer lists them."""

    loc: str = Field(description="where: a dotted field path such as 'disks.0.size_gib', or 'body'")
    msg: str = Field(description="what to change")


class Problem(BaseModel):
    """RFC 9457 ``application/problem+json``. ``detail`` is the sentence to show a person."""

    # RFC 9457 lets problem types add members; clients must ignore the ones they do not know.
    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="a URI naming the problem type")
    title: str = Field(description="a short summary of the status, the same for every occurrence")
    status: int = Field(ge=400, le=599, description="the HTTP status code of the answer")
    detail: str = Field(description="what went wrong and what to change")
    # Absent rather than null when there is nothing to list: the answers never carry null.
    errors: list[FieldError] = Field(
        default_factory=list, description="validation answers (422) only: every invalid field"
    )
