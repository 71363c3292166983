/*
 * session.c — signing in and out over HTTP (SPEC §5):
 * POST /api/v1/login with a user name and password (JSON, XML or form)
 * issues a ticket for the Authorization header and a browser session: an
 * HttpOnly session cookie plus a readable XSRF-TOKEN cookie whose value
 * the page echoes in X-XSRF-TOKEN. POST /api/v1/logout ends both.
 *
 * A login must be one a cross-site page cannot forge (SPEC §5): a body
 * whose Content-Type needs a CORS preflight (JSON, XML), which only the
 * listed origins pass, or else an Origin on the --cors-origin list.
 * Anything else (a form posted from another site, a no-cors fetch) is 403
 * before the password is looked at.
 *
 * Cookies are SameSite=Strict and scoped to the whole server. They carry
 * the Secure flag when the client speaks https, which only a trusted proxy
 * can tell (X-Forwarded-Proto or Forwarded proto=, --trusted-proxy):
 * crmblob itself speaks plain HTTP.
 */
#include <string.h>

#include "api/api_int.h"
#include "core/text.h"

static const char *const user_fields[] = {"UserName", "Username", "User", "Name", "Login"};

/* The first of the accepted user-name members present; NULL if none. */
static const char *login_user(json_t *body)
{
    for (size_t i = 0; i < sizeof(user_fields) / sizeof(user_fields[0]); i++) {
        json_t *v = carrier_get(body, user_fields[i]);
        if (json_is_string(v) && json_string_length(v) > 0)
            return json_string_value(v);
    }
    return NULL;
}

static void set_cookies(api_exchange *x, const auth_login_result *r, bool secure)
{
    int64_t max_age = (r->session_expires_ms - text_now_ms()) / 1000;
    const char *sec = secure ? "; Secure" : "";
    api_add_header(x, "Set-Cookie",
                   arena_printf(x->arena,
                                "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                                AUTH_SESSION_COOKIE, r->session, (long long)max_age, sec));
    api_add_header(x, "Set-Cookie",
                   arena_printf(x->arena, "%s=%s; Path=/; Max-Age=%lld; SameSite=Strict%s",
                                AUTH_XSRF_COOKIE, r->xsrf, (long long)max_age, sec));
    api_add_header(x, "Cache-Control", "no-store");
}

static json_t *login_answer(const auth_login_result *r)
{
    char expires[TEXT_DATE_MAX];
    text_format_date(r->ticket_expires_ms, expires);
    return json_pack("{s:s, s:s, s:s, s:o}", "Ticket", r->ticket, "TicketExpires", expires,
                     "XsrfToken", r->xsrf, "Associate", carrier_associate(&r->user));
}

static bool login_not_forged(api_exchange *x, const api_request *req)
{
    if (!cors_type_is_simple(req->header(req->conn, "Content-Type")) ||
        cors_origin_listed(x->api, x->origin))
        return true;
    API_FAIL0(x, CB_EFORBIDDEN, MSG_LOGIN_CROSS_SITE);
    return false;
}

void session_login(api_exchange *x, const api_request *req)
{
    if (!login_not_forged(x, req))
        return;
    json_t *empty = json_object();
    json_t *body = carrier_read(x, empty);
    json_decref(empty);
    if (body == NULL)
        return;
    const char *user = login_user(body);
    json_t *pw = carrier_get(body, "Password");
    auth_login_result r;
    if (user == NULL || !json_is_string(pw)) {
        API_FAIL0(x, CB_EBADREQ, MSG_LOGIN_FIELDS);
    } else {
        cb_err e = auth_login(x->api->auth, x->store, x->arena, user, json_string_value(pw),
                              req->remote, &r);
        if (e == CB_EOK) {
            x->user = r.user;
            x->authed = true;
            set_cookies(x, &r, req->secure);
            api_answer_carrier(x, 200, "LoginResult", login_answer(&r));
        } else {
            api_fail_auth(x, e, &r.throttle);
        }
    }
    json_decref(body);
}

void session_logout(api_exchange *x, const api_request *req)
{
    auth_input in = api_auth_input(req);
    cb_err e = auth_logout(x->api->auth, x->store, x->arena, &in);
    if (e != CB_EOK) {
        api_fail_below(x, e);
        return;
    }
    const char *sec = req->secure ? "; Secure" : "";
    api_add_header(x, "Set-Cookie",
                   arena_printf(x->arena, "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
                                AUTH_SESSION_COOKIE, sec));
    api_add_header(
        x, "Set-Cookie",
        arena_printf(x->arena, "%s=; Path=/; Max-Age=0; SameSite=Strict%s", AUTH_XSRF_COOKIE, sec));
    api_answer_empty(x, 204);
}
