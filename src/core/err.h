/*
 * err.h — crmblob's one error enum.
 *
 * Every failure that can reach a client is one of these codes. The X-macro
 * below is the single place that maps a code to its HTTP status and to the
 * ErrorType string of the wire error carrier (SPEC §4); nothing else in the
 * tree may hard-code that mapping.
 */
#ifndef CB_ERR_H
#define CB_ERR_H

/*        name         status  ErrorType */
#define CB_ERR_MAP(X)                                                                              \
    X(OK, 200, "")                                                                                 \
    X(BADREQ, 400, "SoBadRequestException")                                                        \
    /* a picture that needs more decoding work than allowed (scans, pages, CPU) */               \
    X(WORK, 400, "SoBadRequestException")                                                          \
    X(UNAUTH, 401, "SoUnauthorizedException")                                                      \
    X(FORBIDDEN, 403, "SoAccessDeniedException")                                                   \
    X(NOTFOUND, 404, "SoNotFoundException")                                                        \
    X(METHOD, 405, "SoBadRequestException")                                                        \
    X(NOTACCEPT, 406, "SoNotAcceptableException")                                                 \
    X(TIMEOUT, 408, "SoBadRequestException")                                                       \
    X(CONFLICT, 409, "SoConflictException")                                                        \
    X(PRECOND, 412, "SoPreconditionFailedException")                                               \
    X(TOOLARGE, 413, "SoTooLargeException")                                                        \
    X(URITOOLONG, 414, "SoTooLargeException")                                                      \
    X(UNSUPPORTED, 415, "SoUnsupportedMediaTypeException")                                         \
    X(RANGE, 416, "SoBadRequestException")                                                         \
    X(TOOMANY, 429, "SoUnauthorizedException")                                                     \
    X(HDRTOOLARGE, 431, "SoTooLargeException")                                                     \
    X(INTERNAL, 500, "SoInternalException")                                                        \
    X(NOTIMPL, 501, "SoBadRequestException")                                                       \
    X(UNAVAILABLE, 503, "SoInternalException")                                                     \
    /* the disk (or the quota) is full: ENOSPC, EDQUOT, SQLITE_FULL */                            \
    X(NOSPACE, 507, "SoInternalException")                                                         \
    /* the call would have to wait (hash a password): call again where */ \
    /* waiting holds up no one; never an answer */                        \
    X(WOULDBLOCK, 500, "SoInternalException")

typedef enum {
#define CB_ERR_ENUM(name, status, type) CB_E##name,
    CB_ERR_MAP(CB_ERR_ENUM)
#undef CB_ERR_ENUM
        CB_ERR__COUNT
} cb_err;

/* HTTP status code of an error (200 for CB_EOK). */
int err_status(cb_err e);
/* Wire ErrorType, e.g. "SoNotFoundException" ("" for CB_EOK). */
const char *err_type(cb_err e);
/* Short symbolic name for logs, e.g. "NOTFOUND". */
const char *err_name(cb_err e);

#endif
