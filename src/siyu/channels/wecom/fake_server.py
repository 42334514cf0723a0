"""A local WeCom server: the documented customer-contact endpoints, their errors and cursors,
and encrypted callbacks pushed to a siyu URL — for tests and the demo's "simulated WeCom" mode.

Run it on loopback: `uvicorn --factory siyu.channels.wecom.fake_server:app_from_env --port 8701`
(SIYU_WECOM_* give corp id, token, AES key; SIYU_FAKE_WECOM_CALLBACK the siyu callback URL).

Error injection (`fail_next`) returns any errcode for the next N calls of an API;
`expire_tokens()` makes every issued token answer 42001. Staff confirmation of mass messages and
moments, which happens in the WeCom client app, is simulated by `confirm_*` and `/fake/*` routes.
The welcome code is valid 20 s after the add and usable once (errcode 41051 otherwise; the exact
code of the real platform is not documented precisely, the behaviour is).
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from siyu.channels.wecom.crypto import CallbackCrypto

Json = dict[str, Any]
WELCOME_WINDOW_SECONDS = 20
PAGE = 2  # tiny pages make pagination visible in tests; callers ask `limit` up to this


@dataclass
class FakeCustomer:
    external_userid: str
    name: str
    unionid: str | None
    follow: dict[str, Json] = field(default_factory=dict)  # userid -> follow_info


@dataclass
class FakeWeCom:
    """The whole fake platform state; an app (`build_app`) serves it over HTTP."""

    corp_id: str
    secret: str
    token: str
    aes_key: str
    callback_url: str | None = None
    now: Callable[[], float] = time.time
    staff: list[str] = field(default_factory=lambda: ["xiaoli"])
    customers: dict[str, FakeCustomer] = field(default_factory=dict)
    contact_ways: dict[str, Json] = field(default_factory=dict)
    welcome_codes: dict[str, float] = field(default_factory=dict)
    welcomes_sent: list[Json] = field(default_factory=list)
    tag_groups: list[Json] = field(default_factory=list)
    groups: dict[str, Json] = field(default_factory=dict)
    msg_templates: dict[str, Json] = field(default_factory=dict)
    moments: dict[str, Json] = field(default_factory=dict)
    reminders: list[str] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    injected: dict[str, list[int]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def crypto(self) -> CallbackCrypto:
        return CallbackCrypto(
            token=self.token, encoding_aes_key=self.aes_key, receive_id=self.corp_id
        )

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def fail_next(self, api: str, errcode: int, times: int = 1) -> None:
        self.injected.setdefault(api, []).extend([errcode] * times)

    def expire_tokens(self) -> None:
        self.tokens = {token: 0.0 for token in self.tokens}

    # -- simulated people ----------------------------------------------------------------
    def simulate_add(
        self,
        *,
        userid: str,
        state: str | None,
        name: str,
        unionid: str | None = None,
        external_userid: str | None = None,
    ) -> Json:
        """A person scans a code: WeCom creates the relation and calls back with a WelcomeCode."""
        ext = external_userid or self.next_id("wm")
        customer = self.customers.setdefault(ext, FakeCustomer(ext, name, unionid))
        created = int(self.now())
        customer.follow[userid] = {
            "userid": userid,
            "remark": "",
            "createtime": created,
            "tags": [],
            "state": state or "",
            "add_way": 1,
        }
        welcome = uuid.uuid4().hex
        self.welcome_codes[welcome] = self.now()
        fields = {
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": userid,
            "ExternalUserID": ext,
            "WelcomeCode": welcome,
            "CreateTime": str(created),
        }
        if state:
            fields["State"] = state
        return fields

    def simulate_delete_by_customer(self, *, userid: str, external_userid: str) -> Json:
        self.customers[external_userid].follow.pop(userid, None)
        return {
            "Event": "change_external_contact",
            "ChangeType": "del_follow_user",
            "UserID": userid,
            "ExternalUserID": external_userid,
            "CreateTime": str(int(self.now())),
        }

    def simulate_join_group(self, *, chat_id: str, external_userid: str) -> Json:
        group = self.groups[chat_id]
        group["member_list"].append(
            {"userid": external_userid, "type": 2, "join_time": int(self.now()), "join_scene": 3}
        )
        # like the platform, the update callback does not always say who joined
        return {
            "Event": "change_external_chat",
            "ChangeType": "update",
            "UpdateDetail": "add_member",
            "ChatId": chat_id,
            "JoinScene": "3",
            "MemChangeCnt": "1",
            "CreateTime": str(int(self.now())),
        }

    def simulate_create_group(
        self, *, chat_id: str, name: str, owner: str, external_userids: list[str]
    ) -> Json:
        """A guide creates a customer group with these customers; the create callback."""
        joined = int(self.now())
        members = [{"userid": owner, "type": 1, "join_time": joined, "join_scene": 1}]
        members += [
            {"userid": ext, "type": 2, "join_time": joined, "join_scene": 1}
            for ext in external_userids
        ]
        self.groups[chat_id] = {
            "chat_id": chat_id,
            "name": name,
            "owner": owner,
            "create_time": joined,
            "member_list": members,
            "admin_list": [],
        }
        return {
            "Event": "change_external_chat",
            "ChangeType": "create",
            "ChatId": chat_id,
            "CreateTime": str(joined),
        }

    def confirm_msg_template(self, *, msgid: str, userid: str) -> None:
        """The guide taps "send" in the WeCom client."""
        template = self.msg_templates[msgid]
        template["tasks"][userid] = {"status": 2, "send_time": int(self.now())}
        for ext in template["recipients"].get(userid, []):
            template["results"][(userid, ext)] = 1

    def confirm_moment(self, *, moment_id: str, userid: str) -> None:
        self.moments[moment_id]["publish"][userid] = 1

    def envelope(self, fields: Json) -> tuple[dict[str, str], str]:
        """Query params and XML body of an encrypted callback carrying `fields`."""
        inner = "".join(f"<{key}><![CDATA[{value}]]></{key}>" for key, value in fields.items())
        xml = f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
        xml += "<FromUserName><![CDATA[sys]]></FromUserName><MsgType><![CDATA[event]]></MsgType>"
        xml += f"{inner}</xml>"
        sealed = self.crypto.encrypt(
            message=xml, timestamp=str(int(self.now())), nonce=uuid.uuid4().hex[:10]
        )
        params = {
            "msg_signature": sealed.msg_signature,
            "timestamp": sealed.timestamp,
            "nonce": sealed.nonce,
        }
        return params, sealed.to_xml()

    async def push(self, fields: Json, *, http: httpx.AsyncClient | None = None) -> httpx.Response:
        """POST the encrypted callback to siyu (the configured URL) like WeCom does."""
        if self.callback_url is None:
            raise RuntimeError("FakeWeCom.callback_url is not configured")
        params, body = self.envelope(fields)
        if http is not None:
            return await http.post(self.callback_url, params=params, content=body)
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await client.post(self.callback_url, params=params, content=body)


def _ok(**fields: Any) -> Json:
    return {"errcode": 0, "errmsg": "ok", **fields}


def _page(items: list[Any], cursor: str, limit: int) -> tuple[list[Any], str]:
    start = int(cursor or 0)
    size = max(1, min(limit, PAGE))
    chunk = items[start : start + size]
    following = start + size
    return chunk, (str(following) if following < len(items) else "")


Handler = Callable[[FakeWeCom, Json, Json], Json]
ROUTES: dict[str, Handler] = {}


def route(api: str) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        ROUTES[api] = handler
        return handler

    return decorate


@route("externalcontact/get_follow_user_list")
def _follow_users(fake: FakeWeCom, query: Json, body: Json) -> Json:
    return _ok(follow_user=list(fake.staff))


@route("externalcontact/list")
def _list(fake: FakeWeCom, query: Json, body: Json) -> Json:
    userid = query.get("userid", "")
    return _ok(
        external_userid=[c.external_userid for c in fake.customers.values() if userid in c.follow]
    )


def _contact(customer: FakeCustomer) -> Json:
    contact: Json = {"external_userid": customer.external_userid, "name": customer.name, "type": 1}
    if customer.unionid:
        contact["unionid"] = customer.unionid
    return contact


@route("externalcontact/get")
def _get(fake: FakeWeCom, query: Json, body: Json) -> Json:
    customer = fake.customers.get(query.get("external_userid", ""))
    if customer is None:
        return {"errcode": 84061, "errmsg": "not external contact"}
    return _ok(
        external_contact=_contact(customer),
        follow_user=list(customer.follow.values()),
        next_cursor="",
    )


@route("externalcontact/batch/get_by_user")
def _batch_get(fake: FakeWeCom, query: Json, body: Json) -> Json:
    userids = set(body.get("userid_list", []))
    rows = [
        {"external_contact": _contact(c), "follow_info": {**f, "tag_id": f.get("tags", [])}}
        for c in fake.customers.values()
        for u, f in c.follow.items()
        if u in userids
    ]
    chunk, cursor = _page(rows, body.get("cursor", ""), int(body.get("limit", 100)))
    return _ok(external_contact_list=chunk, next_cursor=cursor)


@route("externalcontact/add_contact_way")
def _add_contact_way(fake: FakeWeCom, query: Json, body: Json) -> Json:
    if len(body.get("state", "")) > 30:
        return {"errcode": 40058, "errmsg": "state exceeds 30 characters"}
    config_id = fake.next_id("cfg")
    fake.contact_ways[config_id] = dict(body)
    return _ok(config_id=config_id, qr_code=f"https://wework.qpic.cn/fake/{config_id}.png")


@route("externalcontact/del_contact_way")
def _del_contact_way(fake: FakeWeCom, query: Json, body: Json) -> Json:
    if fake.contact_ways.pop(body.get("config_id", ""), None) is None:
        return {"errcode": 41044, "errmsg": "invalid config_id"}
    return _ok()


@route("externalcontact/send_welcome_msg")
def _welcome(fake: FakeWeCom, query: Json, body: Json) -> Json:
    issued = fake.welcome_codes.pop(body.get("welcome_code", ""), None)
    if issued is None or fake.now() - issued > WELCOME_WINDOW_SECONDS:
        return {"errcode": 41051, "errmsg": "welcome_code expired or already used"}
    fake.welcomes_sent.append({**body, "latency": fake.now() - issued})
    return _ok()


@route("externalcontact/get_corp_tag_list")
def _tags(fake: FakeWeCom, query: Json, body: Json) -> Json:
    return _ok(tag_group=fake.tag_groups)


@route("externalcontact/add_corp_tag")
def _add_tag(fake: FakeWeCom, query: Json, body: Json) -> Json:
    group = next((g for g in fake.tag_groups if g["group_name"] == body.get("group_name")), None)
    if group is None:
        group = {
            "group_id": fake.next_id("etg"),
            "group_name": body["group_name"],
            "order": 0,
            "tag": [],
        }
        fake.tag_groups.append(group)
    for tag in body.get("tag", []):
        group["tag"].append({"id": fake.next_id("et"), "name": tag["name"], "order": 0})
    return _ok(tag_group=group)


@route("externalcontact/mark_tag")
def _mark_tag(fake: FakeWeCom, query: Json, body: Json) -> Json:
    customer = fake.customers.get(body.get("external_userid", ""))
    follow = customer.follow.get(body.get("userid", "")) if customer else None
    if follow is None:
        return {"errcode": 84061, "errmsg": "not external contact"}
    tags = [t for t in follow["tags"] if t not in body.get("remove_tag", [])]
    follow["tags"] = tags + [t for t in body.get("add_tag", []) if t not in tags]
    return _ok()


@route("externalcontact/add_msg_template")
def _add_msg_template(fake: FakeWeCom, query: Json, body: Json) -> Json:
    msgid = fake.next_id("msg")
    sender = body.get("sender", "")
    fake.msg_templates[msgid] = {
        "body": body,
        "tasks": {sender: {"status": 0}},
        "recipients": {
            sender: list(body.get("external_userid", []) or body.get("chat_id_list", []))
        },
        "results": {},
    }
    return _ok(fail_list=[], msgid=msgid)


@route("externalcontact/get_groupmsg_task")
def _groupmsg_task(fake: FakeWeCom, query: Json, body: Json) -> Json:
    template = fake.msg_templates[body["msgid"]]
    rows = [{"userid": u, **t} for u, t in template["tasks"].items()]
    chunk, cursor = _page(rows, body.get("cursor", ""), int(body.get("limit", 1000)))
    return _ok(task_list=chunk, next_cursor=cursor)


@route("externalcontact/get_groupmsg_send_result")
def _groupmsg_result(fake: FakeWeCom, query: Json, body: Json) -> Json:
    template = fake.msg_templates[body["msgid"]]
    userid = body.get("userid", "")
    rows = [
        {
            "external_userid": ext,
            "userid": userid,
            "status": template["results"].get((userid, ext), 0),
        }
        for ext in template["recipients"].get(userid, [])
    ]
    chunk, cursor = _page(rows, body.get("cursor", ""), int(body.get("limit", 1000)))
    return _ok(send_list=chunk, next_cursor=cursor)


@route("externalcontact/remind_groupmsg_send")
def _remind(fake: FakeWeCom, query: Json, body: Json) -> Json:
    fake.reminders.append(body.get("msgid", ""))
    return _ok()


@route("externalcontact/add_moment_task")
def _add_moment(fake: FakeWeCom, query: Json, body: Json) -> Json:
    jobid = fake.next_id("job")
    moment_id = fake.next_id("mom")
    users = body.get("visible_range", {}).get("sender_list", {}).get("user_list", []) or list(
        fake.staff
    )
    fake.moments[moment_id] = {"jobid": jobid, "body": body, "publish": {u: 0 for u in users}}
    return _ok(jobid=jobid)


@route("externalcontact/get_moment_task_result")
def _moment_result(fake: FakeWeCom, query: Json, body: Json) -> Json:
    moment_id = next(m for m, v in fake.moments.items() if v["jobid"] == query.get("jobid"))
    return _ok(status=3, type="add_moment_task", result={"errcode": 0, "moment_id": moment_id})


@route("externalcontact/get_moment_task")
def _moment_task(fake: FakeWeCom, query: Json, body: Json) -> Json:
    publish = fake.moments[body["moment_id"]]["publish"]
    rows = [{"userid": u, "publish_status": s} for u, s in publish.items()]
    chunk, cursor = _page(rows, body.get("cursor", ""), int(body.get("limit", 1000)))
    return _ok(task_list=chunk, next_cursor=cursor)


@route("externalcontact/groupchat/list")
def _groups(fake: FakeWeCom, query: Json, body: Json) -> Json:
    rows = [{"chat_id": c, "status": 0} for c in fake.groups]
    chunk, cursor = _page(rows, body.get("cursor", ""), int(body.get("limit", 1000)))
    return _ok(group_chat_list=chunk, next_cursor=cursor)


@route("externalcontact/groupchat/get")
def _group(fake: FakeWeCom, query: Json, body: Json) -> Json:
    group = fake.groups.get(body.get("chat_id", ""))
    if group is None:
        return {"errcode": 40050, "errmsg": "invalid chat_id"}
    return _ok(group_chat=group)


@route("externalcontact/transfer_customer")
def _transfer(fake: FakeWeCom, query: Json, body: Json) -> Json:
    return _ok(
        customer=[{"external_userid": e, "errcode": 0} for e in body.get("external_userid", [])]
    )


@route("externalcontact/get_user_behavior_data")
def _behavior(fake: FakeWeCom, query: Json, body: Json) -> Json:
    return _ok(
        behavior_data=[
            {"stat_time": body.get("start_time"), "new_contact_cnt": len(fake.customers)}
        ]
    )


def _token_error(fake: FakeWeCom, token: str | None) -> Json | None:
    if not token:
        return {"errcode": 41001, "errmsg": "access_token missing"}
    expires = fake.tokens.get(token)
    if expires is None:
        return {"errcode": 40014, "errmsg": "invalid access_token"}
    if expires <= fake.now():
        return {"errcode": 42001, "errmsg": "access_token expired"}
    return None


def build_app(fake: FakeWeCom) -> FastAPI:
    app = FastAPI(title="fake WeCom")
    app.state.fake = fake

    @app.get("/cgi-bin/gettoken")
    def gettoken(corpid: str, corpsecret: str) -> Json:
        if (corpid, corpsecret) != (fake.corp_id, fake.secret):
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = uuid.uuid4().hex
        fake.tokens[token] = fake.now() + 7200
        return _ok(access_token=token, expires_in=7200)

    @app.api_route("/cgi-bin/{api:path}", methods=["GET", "POST"])
    async def api(api: str, request: Request) -> JSONResponse:
        fake.calls[api] = fake.calls.get(api, 0) + 1
        query = dict(request.query_params)
        injected = fake.injected.get(api)
        if injected:
            return JSONResponse({"errcode": injected.pop(0), "errmsg": "injected"})
        error = _token_error(fake, query.pop("access_token", None))
        if error is not None:
            return JSONResponse(error)
        handler = ROUTES.get(api)
        if handler is None:
            return JSONResponse(
                {"errcode": 60020, "errmsg": f"fake WeCom does not implement {api}"}
            )
        body = await request.json() if request.method == "POST" else {}
        return JSONResponse(handler(fake, query, body))

    @app.post("/fake/simulate_add")
    async def simulate_add(payload: Json) -> Json:
        fields = fake.simulate_add(
            userid=payload["userid"],
            state=payload.get("state"),
            name=payload.get("name", "Wang Fang"),
            unionid=payload.get("unionid"),
        )
        response = await fake.push(fields)
        return {"callback_status": response.status_code, **fields}

    @app.post("/fake/prepare_adds")
    def prepare_adds(payload: Json) -> Json:
        """Scans whose encrypted callbacks the caller delivers itself (load generators)."""
        prepared = []
        for item in payload["adds"]:
            fields = fake.simulate_add(
                userid=item["userid"],
                state=item.get("state"),
                name=item.get("name", "Wang Fang"),
                unionid=item.get("unionid"),
                external_userid=item.get("external_userid"),
            )
            params, body = fake.envelope(fields)
            prepared.append({"params": params, "body": body})
        return {"prepared": prepared}

    @app.get("/fake/stats")
    def stats() -> Json:
        latencies = [w.get("latency") for w in fake.welcomes_sent]
        return {"welcome_latencies": latencies, "calls": fake.calls}

    @app.post("/fake/confirm_groupmsg")
    def confirm(payload: Json) -> Json:
        fake.confirm_msg_template(msgid=payload["msgid"], userid=payload["userid"])
        return _ok()

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for the demo's simulated WeCom."""
    fake = FakeWeCom(
        corp_id=os.environ.get("SIYU_WECOM_CORP_ID", "wwDemoTea"),
        secret=os.environ.get("SIYU_WECOM_SECRET", "demo-secret"),
        token=os.environ.get("SIYU_WECOM_TOKEN", "demotoken"),
        aes_key=os.environ.get("SIYU_WECOM_AES_KEY", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"),
        callback_url=os.environ.get("SIYU_FAKE_WECOM_CALLBACK"),
    )
    return build_app(fake)
