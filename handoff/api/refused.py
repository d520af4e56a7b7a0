"""The page a signed-in agent gets for a console page their role may not open, in their language."""

from __future__ import annotations

import html

from aiohttp import web

from handoff.agents import Role

# The page a signed-in agent gets for a page their role may not open (the supervisor view), in the
# console's language: its ?lang=, the language the console remembers (LANG_COOKIE, set by common.js), else
# the browser's Accept-Language. Its only link leads back to the agent console.
LANG_COOKIE = "relevo_lang"
CONSOLE_LANGS = ("en", "es")
REFUSED_TEXTS = {
    "en": {"title": "Not for your role", "body": "Your role may not open this page. It is for {who}.",
           "back": "Back to the agent console"},
    "es": {"title": "No es para tu rol", "body": "Tu rol no puede abrir esta página. Es para {who}.",
           "back": "Volver a la consola de agente"},
}  # fmt: skip
REFUSED_WHO = {
    "en": {"supervisor": "supervisors", "admin": "admins"},
    "es": {"supervisor": "supervisores", "admin": "administradores"},
}
REFUSED_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} — Relevo</title>
<link rel="stylesheet" href="/console/console.css">
</head>
<body class="page-login">
<main class="login-card" id="refused">
  <h1 class="login-brand">Relevo</h1>
  <h2>{title}</h2>
  <p>{body}</p>
  <p><a id="refused-back" class="btn btn-primary" href="{back_href}">{back}</a></p>
</main>
</body>
</html>
"""


def console_lang(request: web.Request) -> str:
    """The console's language for a page the server writes: ?lang=, the remembered choice, the browser's."""
    for chosen in (request.query.get("lang", ""), request.cookies.get(LANG_COOKIE, "")):
        code = chosen[:2].lower()
        if code in CONSOLE_LANGS:
            return code
    ranked = []
    for i, item in enumerate(request.headers.get("Accept-Language", "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = params.strip()[2:] if params.strip().startswith("q=") else "1"
        try:
            weight = float(q)
        except ValueError:
            continue
        code = tag.strip()[:2].lower()
        if code in CONSOLE_LANGS and weight > 0:
            ranked.append((-weight, i, code))
    return min(ranked)[2] if ranked else "en"


def refused_page(request: web.Request, role: Role = "supervisor") -> web.Response:
    lang = console_lang(request)
    who = REFUSED_WHO[lang].get(role, REFUSED_WHO[lang]["supervisor"])
    texts = {**REFUSED_TEXTS[lang], "body": REFUSED_TEXTS[lang]["body"].format(who=who)}
    back = "/agent?lang=" + lang if request.query.get("lang", "")[:2].lower() == lang else "/agent"
    body = REFUSED_PAGE.format(
        lang=lang, back_href=html.escape(back), **{k: html.escape(v) for k, v in texts.items()}
    )
    response = web.Response(status=403, text=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response
