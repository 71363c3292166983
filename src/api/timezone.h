/*
 * timezone.h — the TimeZone endpoints (SPEC §2, §6): the locations that
 * SO-TimeZone accepts, as TimeZoneData carriers.
 *
 * The handlers only read the set tz_init loaded at startup.
 */
#ifndef CB_TIMEZONE_H
#define CB_TIMEZONE_H

#include "api/api.h"

/* GET /api/v1/TimeZone: ODataSlimResponse of every location ($top, $skip). */
void timezone_list(api_exchange *x, const api_request *req);
/* GET /api/v1/TimeZone/base: UTC, the zone crmblob stores dates in. */
void timezone_base(api_exchange *x, const api_request *req);
/* GET /api/v1/TimeZone/current: the SO-TimeZone location, else UTC. */
void timezone_current(api_exchange *x, const api_request *req);

#endif
