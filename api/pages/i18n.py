"""UI text in zh-CN and en. Keys are stable identifiers; a missing key shows the key itself."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh-CN", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "app.title": "呼叫中心",
        "nav.agent": "坐席工作台",
        "nav.wallboard": "监控大屏",
        "nav.campaigns": "外呼活动",
        "nav.screening": "来电筛查",
        "nav.qa": "质检",
        "nav.logout": "退出",
        "login.title": "登录",
        "login.username": "用户名",
        "login.password": "密码",
        "login.submit": "登录",
        "login.failed": "用户名或密码错误",
        "login.locked": "登录失败次数过多，请稍后再试",
        "home.welcome": "欢迎，{name}",
        "lang.switch": "English",
    },
    "en": {
        "app.title": "Call center",
        "nav.agent": "Agent console",
        "nav.wallboard": "Wallboard",
        "nav.campaigns": "Campaigns",
        "nav.screening": "Screening",
        "nav.qa": "Quality",
        "nav.logout": "Log out",
        "login.title": "Log in",
        "login.username": "Username",
        "login.password": "Password",
        "login.submit": "Log in",
        "login.failed": "Wrong username or password",
        "login.locked": "Too many failed logins, try again later",
        "home.welcome": "Welcome, {name}",
        "lang.switch": "中文",
    },
}


def pick_language(requested: str | None, user_language: str | None, default: str) -> str:
    for candidate in (requested, user_language, default):
        if candidate in LANGUAGES:
            return candidate
    return "zh-CN"


def translator(language: str) -> Callable[..., str]:
    """A `t(key, **values)` function for templates; values are substituted with str.format_map."""
    catalog = MESSAGES.get(language, MESSAGES["zh-CN"])

    def t(key: str, **values: object) -> str:
        text = catalog.get(key) or MESSAGES["en"].get(key) or key
        return text.format_map(values) if values else text

    return t
