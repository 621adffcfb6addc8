"""Which projects a page offers the signed-in token, from the gateway's GetCallerIdentity.

Asked again on each page that offers them rather than kept in the session cookie, so
the cookie stays small whatever the number of projects, and an admin sees projects
made since it signed in."""

from __future__ import annotations

from dataclasses import dataclass

from synthtasks.v1 import token_service_pb2 as token_pb

from services.web.visits import Visit


@dataclass(frozen=True)
class ProjectChoices:
    """The projects a page offers. A project token chooses among `projects` (a select);
    a token that may act in any project (`free_text`) types one, with `projects` as
    suggestions: those opened in this session first, then those the registry knows."""

    free_text: bool
    projects: list[str]

    def preselected(self, recent: list[str]) -> str:
        """A token's only project, else the most recently opened one it may choose."""
        if not self.free_text and len(self.projects) == 1:
            return self.projects[0]
        return next((p for p in recent if p in self.projects), "")


async def caller_identity(visit: Visit, token: str) -> token_pb.GetCallerIdentityResponse:
    return await visit.web.gateway.call(
        visit.web.gateway.tokens.GetCallerIdentity, token_pb.GetCallerIdentityRequest(), token
    )


async def project_choices(visit: Visit, token: str) -> ProjectChoices:
    me = await caller_identity(visit, token)
    if not me.all_projects:
        return ProjectChoices(False, [p.removeprefix("projects/") for p in me.projects])
    known = [p.removeprefix("projects/") for p in me.known_projects]
    recent = visit.session.projects
    return ProjectChoices(True, [*recent, *(p for p in known if p not in recent)])
