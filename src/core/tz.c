/*
 * tz.c — time-zone locations (SPEC §6), the TZif (RFC 8536) and POSIX TZ
 * parsers, and the zone arithmetic of tz.h.
 *
 * Invariants:
 * - `rows` is the one list of locations. Ids and codes are unique and an id
 *   is never reused for another location (tests check uniqueness); rows[0]
 *   is UTC. Loaded zones point into `rows`.
 * - A tz_rules holds its transitions in strictly ascending order, every
 *   transition names a type < ntypes, and ntypes >= 1. A footer, when
 *   present, has been parsed and governs instants from the last transition
 *   on (from the first, when there are none).
 * - The loaded set is written only by tz_init and tz_shutdown, at startup;
 *   every other function only reads it, so readers need no lock.
 * - Calendar arithmetic is proleptic Gregorian on int64 days since
 *   1970-01-01; nothing uses libc's local-time functions or the process TZ.
 */
#include "core/tz.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* ---- the locations ------------------------------------------------------ */

typedef struct {
    int id;             /* TZLocationID: ours, stable, never reused */
    const char *code;   /* TZLocationCode */
    const char *name;   /* Name */
    const char *cities; /* TZLocationCities */
    int iso;            /* IsoNumber: ISO 3166-1 numeric, 0 when none */
    const char *iana;   /* the zone's file under the zoneinfo directory */
} tz_row;

/*
 * Codes follow SuperOffice's scheme: a country's ISO 3166-1 alpha-2 code
 * ("NO", "SE"), and COUNTRY-REGION when this table lists several zones of
 * one country ("US-NY" for US Eastern, "AU-QLD", "AR-NQ"). The region part
 * is the ISO 3166-2 subdivision of the zone's main city where one exists,
 * else a short mnemonic ("ES-MD" mainland Spain, "BR-FN" Fernando de
 * Noronha, "KI-LI" Line Islands). Kosovo has no ISO numeric code (0).
 * New rows take the next unused id; a row that must go keeps its id unused.
 */
/* clang-format off */
static const tz_row rows[] = {
    {1, "UTC", "Coordinated Universal Time", "", 0, "Etc/UTC"},
    /* Europe */
    {2, "NO", "Norway", "Oslo", 578, "Europe/Oslo"},
    {3, "SE", "Sweden", "Stockholm", 752, "Europe/Stockholm"},
    {4, "DK", "Denmark", "Copenhagen", 208, "Europe/Copenhagen"},
    {5, "FI", "Finland", "Helsinki", 246, "Europe/Helsinki"},
    {6, "IS", "Iceland", "Reykjavik", 352, "Atlantic/Reykjavik"},
    {7, "DE", "Germany", "Berlin, Frankfurt, Munich, Hamburg", 276, "Europe/Berlin"},
    {8, "NL", "Netherlands", "Amsterdam, Rotterdam, The Hague", 528, "Europe/Amsterdam"},
    {9, "BE", "Belgium", "Brussels", 56, "Europe/Brussels"},
    {10, "LU", "Luxembourg", "Luxembourg", 442, "Europe/Luxembourg"},
    {11, "FR", "France", "Paris", 250, "Europe/Paris"},
    {12, "GB", "United Kingdom", "London, Edinburgh, Cardiff, Belfast", 826, "Europe/London"},
    {13, "IE", "Ireland", "Dublin", 372, "Europe/Dublin"},
    {14, "ES-MD", "Spain - Mainland", "Madrid, Barcelona, Valencia, Seville", 724, "Europe/Madrid"},
    {15, "ES-CN", "Spain - Canary Islands", "Las Palmas, Santa Cruz", 724, "Atlantic/Canary"},
    {16, "PT-LI", "Portugal - Mainland", "Lisbon, Porto, Funchal", 620, "Europe/Lisbon"},
    {17, "PT-AC", "Portugal - Azores", "Ponta Delgada", 620, "Atlantic/Azores"},
    {18, "IT", "Italy", "Rome, Milan", 380, "Europe/Rome"},
    {19, "CH", "Switzerland", "Zurich, Bern, Geneva", 756, "Europe/Zurich"},
    {20, "AT", "Austria", "Vienna", 40, "Europe/Vienna"},
    {21, "LI", "Liechtenstein", "Vaduz", 438, "Europe/Vaduz"},
    {22, "MC", "Monaco", "Monaco", 492, "Europe/Monaco"},
    {23, "AD", "Andorra", "Andorra la Vella", 20, "Europe/Andorra"},
    {24, "SM", "San Marino", "San Marino", 674, "Europe/San_Marino"},
    {25, "VA", "Vatican City", "Vatican City", 336, "Europe/Vatican"},
    {26, "MT", "Malta", "Valletta", 470, "Europe/Malta"},
    {27, "PL", "Poland", "Warsaw, Krakow", 616, "Europe/Warsaw"},
    {28, "CZ", "Czechia", "Prague", 203, "Europe/Prague"},
    {29, "SK", "Slovakia", "Bratislava", 703, "Europe/Bratislava"},
    {30, "HU", "Hungary", "Budapest", 348, "Europe/Budapest"},
    {31, "SI", "Slovenia", "Ljubljana", 705, "Europe/Ljubljana"},
    {32, "HR", "Croatia", "Zagreb", 191, "Europe/Zagreb"},
    {33, "BA", "Bosnia and Herzegovina", "Sarajevo", 70, "Europe/Sarajevo"},
    {34, "RS", "Serbia", "Belgrade", 688, "Europe/Belgrade"},
    {35, "ME", "Montenegro", "Podgorica", 499, "Europe/Podgorica"},
    {36, "XK", "Kosovo", "Pristina", 0, "Europe/Belgrade"},
    {37, "MK", "North Macedonia", "Skopje", 807, "Europe/Skopje"},
    {38, "AL", "Albania", "Tirana", 8, "Europe/Tirane"},
    {39, "GR", "Greece", "Athens", 300, "Europe/Athens"},
    {40, "BG", "Bulgaria", "Sofia", 100, "Europe/Sofia"},
    {41, "RO", "Romania", "Bucharest", 642, "Europe/Bucharest"},
    {42, "MD", "Moldova", "Chisinau", 498, "Europe/Chisinau"},
    {43, "UA", "Ukraine", "Kyiv, Lviv, Odesa", 804, "Europe/Kyiv"},
    {44, "BY", "Belarus", "Minsk", 112, "Europe/Minsk"},
    {45, "LT", "Lithuania", "Vilnius", 440, "Europe/Vilnius"},
    {46, "LV", "Latvia", "Riga", 428, "Europe/Riga"},
    {47, "EE", "Estonia", "Tallinn", 233, "Europe/Tallinn"},
    {48, "CY", "Cyprus", "Nicosia", 196, "Asia/Nicosia"},
    {49, "TR", "Turkey", "Istanbul, Ankara", 792, "Europe/Istanbul"},
    {50, "RU-KGD", "Russia - Kaliningrad", "Kaliningrad", 643, "Europe/Kaliningrad"},
    {51, "RU-MOW", "Russia - Moscow", "Moscow, Saint Petersburg", 643, "Europe/Moscow"},
    {52, "RU-SAM", "Russia - Samara", "Samara", 643, "Europe/Samara"},
    {53, "FO", "Faroe Islands", "Tórshavn", 234, "Atlantic/Faroe"},
    {54, "GI", "Gibraltar", "Gibraltar", 292, "Europe/Gibraltar"},
    {55, "GG", "Guernsey", "St Peter Port", 831, "Europe/Guernsey"},
    {56, "JE", "Jersey", "St Helier", 832, "Europe/Jersey"},
    {57, "IM", "Isle of Man", "Douglas", 833, "Europe/Isle_of_Man"},
    {58, "AX", "Åland Islands", "Mariehamn", 248, "Europe/Mariehamn"},
    {59, "SJ", "Svalbard and Jan Mayen", "Longyearbyen", 744, "Arctic/Longyearbyen"},
    {60, "GE", "Georgia", "Tbilisi", 268, "Asia/Tbilisi"},
    {61, "AM", "Armenia", "Yerevan", 51, "Asia/Yerevan"},
    {62, "AZ", "Azerbaijan", "Baku", 31, "Asia/Baku"},
    /* Russia east of the Urals */
    {63, "RU-SVE", "Russia - Yekaterinburg", "Yekaterinburg", 643, "Asia/Yekaterinburg"},
    {64, "RU-OMS", "Russia - Omsk", "Omsk", 643, "Asia/Omsk"},
    {65, "RU-NVS", "Russia - Novosibirsk", "Novosibirsk", 643, "Asia/Novosibirsk"},
    {66, "RU-KYA", "Russia - Krasnoyarsk", "Krasnoyarsk", 643, "Asia/Krasnoyarsk"},
    {67, "RU-IRK", "Russia - Irkutsk", "Irkutsk", 643, "Asia/Irkutsk"},
    {68, "RU-SA", "Russia - Yakutsk", "Yakutsk", 643, "Asia/Yakutsk"},
    {69, "RU-PRI", "Russia - Vladivostok", "Vladivostok", 643, "Asia/Vladivostok"},
    {70, "RU-MAG", "Russia - Magadan", "Magadan", 643, "Asia/Magadan"},
    {71, "RU-KAM", "Russia - Kamchatka", "Petropavlovsk-Kamchatsky", 643, "Asia/Kamchatka"},
    /* North America */
    {72, "US-NY", "United States - New York", "New York, Washington", 840, "America/New_York"},
    {73, "US-IL", "United States - Illinois", "Chicago, Dallas, Houston", 840, "America/Chicago"},
    {74, "US-CO", "United States - Colorado", "Denver, Salt Lake City", 840, "America/Denver"},
    {75, "US-AZ", "United States - Arizona", "Phoenix, Tucson", 840, "America/Phoenix"},
    {76, "US-CA", "United States - California", "Los Angeles, Seattle", 840, "America/Los_Angeles"},
    {77, "US-AK", "United States - Alaska", "Anchorage, Juneau", 840, "America/Anchorage"},
    {78, "US-HI", "United States - Hawaii", "Honolulu", 840, "Pacific/Honolulu"},
    {79, "CA-NL", "Canada - Newfoundland", "St. John's", 124, "America/St_Johns"},
    {80, "CA-NS", "Canada - Atlantic", "Halifax", 124, "America/Halifax"},
    {81, "CA-ON", "Canada - Eastern", "Toronto, Ottawa, Montreal", 124, "America/Toronto"},
    {82, "CA-MB", "Canada - Central", "Winnipeg", 124, "America/Winnipeg"},
    {83, "CA-SK", "Canada - Saskatchewan", "Regina, Saskatoon", 124, "America/Regina"},
    {84, "CA-AB", "Canada - Mountain", "Calgary, Edmonton", 124, "America/Edmonton"},
    {85, "CA-BC", "Canada - Pacific", "Vancouver, Victoria", 124, "America/Vancouver"},
    {86, "CA-YT", "Canada - Yukon", "Whitehorse", 124, "America/Whitehorse"},
    {87, "MX-CMX", "Mexico - Central", "Mexico City, Guadalajara", 484, "America/Mexico_City"},
    {88, "MX-ROO", "Mexico - Quintana Roo", "Cancún", 484, "America/Cancun"},
    {89, "MX-SIN", "Mexico - Pacific", "Mazatlán, Culiacán, La Paz", 484, "America/Mazatlan"},
    {90, "MX-SON", "Mexico - Sonora", "Hermosillo", 484, "America/Hermosillo"},
    {91, "MX-BCN", "Mexico - Baja California", "Tijuana, Mexicali", 484, "America/Tijuana"},
    {92, "GL", "Greenland", "Nuuk", 304, "America/Nuuk"},
    {93, "BM", "Bermuda", "Hamilton", 60, "Atlantic/Bermuda"},
    /* Central America and the Caribbean */
    {94, "GT", "Guatemala", "Guatemala City", 320, "America/Guatemala"},
    {95, "BZ", "Belize", "Belmopan", 84, "America/Belize"},
    {96, "SV", "El Salvador", "San Salvador", 222, "America/El_Salvador"},
    {97, "HN", "Honduras", "Tegucigalpa", 340, "America/Tegucigalpa"},
    {98, "NI", "Nicaragua", "Managua", 558, "America/Managua"},
    {99, "CR", "Costa Rica", "San José", 188, "America/Costa_Rica"},
    {100, "PA", "Panama", "Panama City", 591, "America/Panama"},
    {101, "CU", "Cuba", "Havana", 192, "America/Havana"},
    {102, "JM", "Jamaica", "Kingston", 388, "America/Jamaica"},
    {103, "HT", "Haiti", "Port-au-Prince", 332, "America/Port-au-Prince"},
    {104, "DO", "Dominican Republic", "Santo Domingo", 214, "America/Santo_Domingo"},
    {105, "PR", "Puerto Rico", "San Juan", 630, "America/Puerto_Rico"},
    {106, "BS", "Bahamas", "Nassau", 44, "America/Nassau"},
    {107, "BB", "Barbados", "Bridgetown", 52, "America/Barbados"},
    {108, "TT", "Trinidad and Tobago", "Port of Spain", 780, "America/Port_of_Spain"},
    {109, "CW", "Curaçao", "Willemstad", 531, "America/Curacao"},
    /* South America */
    {110, "BR-SP", "Brazil - Brasília", "São Paulo, Rio de Janeiro", 76, "America/Sao_Paulo"},
    {111, "BR-AM", "Brazil - Amazon", "Manaus, Cuiabá, Porto Velho", 76, "America/Manaus"},
    {112, "BR-AC", "Brazil - Acre", "Rio Branco", 76, "America/Rio_Branco"},
    {113, "BR-FN", "Brazil - Fernando de Noronha", "Fernando de Noronha", 76, "America/Noronha"},
    {114, "AR-BA", "Argentina", "Buenos Aires, Córdoba", 32, "America/Argentina/Buenos_Aires"},
    {115, "AR-NQ", "Argentina - Neuquén", "Neuquén, Salta", 32, "America/Argentina/Salta"},
    {116, "CL-RM", "Chile - Santiago", "Santiago, Valparaíso", 152, "America/Santiago"},
    {117, "CL-MA", "Chile - Magallanes", "Punta Arenas", 152, "America/Punta_Arenas"},
    {118, "CL-EI", "Chile - Easter Island", "Hanga Roa", 152, "Pacific/Easter"},
    {119, "CO", "Colombia", "Bogotá, Medellín", 170, "America/Bogota"},
    {120, "PE", "Peru", "Lima", 604, "America/Lima"},
    {121, "VE", "Venezuela", "Caracas", 862, "America/Caracas"},
    {122, "EC", "Ecuador", "Quito, Guayaquil", 218, "America/Guayaquil"},
    {123, "BO", "Bolivia", "La Paz, Santa Cruz", 68, "America/La_Paz"},
    {124, "PY", "Paraguay", "Asunción", 600, "America/Asuncion"},
    {125, "UY", "Uruguay", "Montevideo", 858, "America/Montevideo"},
    {126, "GY", "Guyana", "Georgetown", 328, "America/Guyana"},
    {127, "SR", "Suriname", "Paramaribo", 740, "America/Paramaribo"},
    {128, "GF", "French Guiana", "Cayenne", 254, "America/Cayenne"},
    {129, "FK", "Falkland Islands", "Stanley", 238, "Atlantic/Stanley"},
    /* Asia */
    {130, "CN", "China", "Beijing, Shanghai, Shenzhen, Guangzhou", 156, "Asia/Shanghai"},
    {131, "HK", "Hong Kong", "Hong Kong", 344, "Asia/Hong_Kong"},
    {132, "MO", "Macao", "Macao", 446, "Asia/Macau"},
    {133, "TW", "Taiwan", "Taipei", 158, "Asia/Taipei"},
    {134, "JP", "Japan", "Tokyo, Osaka", 392, "Asia/Tokyo"},
    {135, "KR", "South Korea", "Seoul", 410, "Asia/Seoul"},
    {136, "KP", "North Korea", "Pyongyang", 408, "Asia/Pyongyang"},
    {137, "MN", "Mongolia", "Ulaanbaatar", 496, "Asia/Ulaanbaatar"},
    {138, "IN", "India", "Mumbai, New Delhi, Bengaluru, Kolkata, Chennai", 356, "Asia/Kolkata"},
    {139, "NP", "Nepal", "Kathmandu", 524, "Asia/Kathmandu"},
    {140, "LK", "Sri Lanka", "Colombo", 144, "Asia/Colombo"},
    {141, "BD", "Bangladesh", "Dhaka", 50, "Asia/Dhaka"},
    {142, "BT", "Bhutan", "Thimphu", 64, "Asia/Thimphu"},
    {143, "MM", "Myanmar", "Yangon", 104, "Asia/Yangon"},
    {144, "PK", "Pakistan", "Karachi, Lahore, Islamabad", 586, "Asia/Karachi"},
    {145, "AF", "Afghanistan", "Kabul", 4, "Asia/Kabul"},
    {146, "IR", "Iran", "Tehran", 364, "Asia/Tehran"},
    {147, "ID-JK", "Indonesia - Western", "Jakarta, Surabaya, Medan", 360, "Asia/Jakarta"},
    {148, "ID-BA", "Indonesia - Central", "Denpasar, Makassar", 360, "Asia/Makassar"},
    {149, "ID-PA", "Indonesia - Eastern", "Jayapura", 360, "Asia/Jayapura"},
    {150, "PH", "Philippines", "Manila", 608, "Asia/Manila"},
    {151, "VN", "Vietnam", "Hanoi, Ho Chi Minh City", 704, "Asia/Ho_Chi_Minh"},
    {152, "TH", "Thailand", "Bangkok", 764, "Asia/Bangkok"},
    {153, "SG", "Singapore", "Singapore", 702, "Asia/Singapore"},
    {154, "MY", "Malaysia", "Kuala Lumpur", 458, "Asia/Kuala_Lumpur"},
    {155, "KH", "Cambodia", "Phnom Penh", 116, "Asia/Phnom_Penh"},
    {156, "LA", "Laos", "Vientiane", 418, "Asia/Vientiane"},
    {157, "BN", "Brunei", "Bandar Seri Begawan", 96, "Asia/Brunei"},
    {158, "TL", "Timor-Leste", "Dili", 626, "Asia/Dili"},
    {159, "AE", "United Arab Emirates", "Dubai, Abu Dhabi", 784, "Asia/Dubai"},
    {160, "SA", "Saudi Arabia", "Riyadh, Jeddah", 682, "Asia/Riyadh"},
    {161, "QA", "Qatar", "Doha", 634, "Asia/Qatar"},
    {162, "BH", "Bahrain", "Manama", 48, "Asia/Bahrain"},
    {163, "KW", "Kuwait", "Kuwait City", 414, "Asia/Kuwait"},
    {164, "OM", "Oman", "Muscat", 512, "Asia/Muscat"},
    {165, "YE", "Yemen", "Sanaa", 887, "Asia/Aden"},
    {166, "IQ", "Iraq", "Baghdad", 368, "Asia/Baghdad"},
    {167, "JO", "Jordan", "Amman", 400, "Asia/Amman"},
    {168, "LB", "Lebanon", "Beirut", 422, "Asia/Beirut"},
    {169, "SY", "Syria", "Damascus", 760, "Asia/Damascus"},
    {170, "IL", "Israel", "Jerusalem, Tel Aviv", 376, "Asia/Jerusalem"},
    {171, "PS", "Palestine", "Ramallah, Hebron, Gaza", 275, "Asia/Hebron"},
    {172, "KZ", "Kazakhstan", "Astana, Almaty", 398, "Asia/Almaty"},
    {173, "UZ", "Uzbekistan", "Tashkent", 860, "Asia/Tashkent"},
    {174, "TM", "Turkmenistan", "Ashgabat", 795, "Asia/Ashgabat"},
    {175, "KG", "Kyrgyzstan", "Bishkek", 417, "Asia/Bishkek"},
    {176, "TJ", "Tajikistan", "Dushanbe", 762, "Asia/Dushanbe"},
    {177, "MV", "Maldives", "Malé", 462, "Indian/Maldives"},
    /* Oceania */
    {178, "AU-NSW", "Australia - New South Wales", "Sydney, Canberra", 36, "Australia/Sydney"},
    {179, "AU-VIC", "Australia - Victoria", "Melbourne", 36, "Australia/Melbourne"},
    {180, "AU-QLD", "Australia - Queensland", "Brisbane, Gold Coast", 36, "Australia/Brisbane"},
    {181, "AU-SA", "Australia - South Australia", "Adelaide", 36, "Australia/Adelaide"},
    {182, "AU-NT", "Australia - Northern Territory", "Darwin", 36, "Australia/Darwin"},
    {183, "AU-WA", "Australia - Western Australia", "Perth", 36, "Australia/Perth"},
    {184, "AU-TAS", "Australia - Tasmania", "Hobart", 36, "Australia/Hobart"},
    {185, "AU-LHI", "Australia - Lord Howe Island", "Lord Howe Island", 36, "Australia/Lord_Howe"},
    {186, "AU-EUC", "Australia - Eucla", "Eucla", 36, "Australia/Eucla"},
    {187, "NZ-AUK", "New Zealand", "Auckland, Wellington, Christchurch", 554, "Pacific/Auckland"},
    {188, "NZ-CIT", "New Zealand - Chatham Islands", "Waitangi", 554, "Pacific/Chatham"},
    {189, "FJ", "Fiji", "Suva", 242, "Pacific/Fiji"},
    {190, "PG", "Papua New Guinea", "Port Moresby", 598, "Pacific/Port_Moresby"},
    {191, "SB", "Solomon Islands", "Honiara", 90, "Pacific/Guadalcanal"},
    {192, "VU", "Vanuatu", "Port Vila", 548, "Pacific/Efate"},
    {193, "NC", "New Caledonia", "Nouméa", 540, "Pacific/Noumea"},
    {194, "PF", "French Polynesia", "Papeete", 258, "Pacific/Tahiti"},
    {195, "WS", "Samoa", "Apia", 882, "Pacific/Apia"},
    {196, "TO", "Tonga", "Nuku'alofa", 776, "Pacific/Tongatapu"},
    {197, "KI-GI", "Kiribati - Gilbert Islands", "South Tarawa", 296, "Pacific/Tarawa"},
    {198, "KI-LI", "Kiribati - Line Islands", "Kiritimati", 296, "Pacific/Kiritimati"},
    {199, "GU", "Guam", "Hagåtña", 316, "Pacific/Guam"},
    /* Africa and the Atlantic */
    {200, "ZA", "South Africa", "Johannesburg, Cape Town, Pretoria", 710, "Africa/Johannesburg"},
    {201, "EG", "Egypt", "Cairo", 818, "Africa/Cairo"},
    {202, "MA", "Morocco", "Casablanca, Rabat", 504, "Africa/Casablanca"},
    {203, "DZ", "Algeria", "Algiers", 12, "Africa/Algiers"},
    {204, "TN", "Tunisia", "Tunis", 788, "Africa/Tunis"},
    {205, "LY", "Libya", "Tripoli", 434, "Africa/Tripoli"},
    {206, "NG", "Nigeria", "Lagos, Abuja", 566, "Africa/Lagos"},
    {207, "GH", "Ghana", "Accra", 288, "Africa/Accra"},
    {208, "CI", "Côte d'Ivoire", "Abidjan", 384, "Africa/Abidjan"},
    {209, "SN", "Senegal", "Dakar", 686, "Africa/Dakar"},
    {210, "KE", "Kenya", "Nairobi", 404, "Africa/Nairobi"},
    {211, "ET", "Ethiopia", "Addis Ababa", 231, "Africa/Addis_Ababa"},
    {212, "TZ", "Tanzania", "Dar es Salaam, Dodoma", 834, "Africa/Dar_es_Salaam"},
    {213, "UG", "Uganda", "Kampala", 800, "Africa/Kampala"},
    {214, "SD", "Sudan", "Khartoum", 729, "Africa/Khartoum"},
    {215, "AO", "Angola", "Luanda", 24, "Africa/Luanda"},
    {216, "NA", "Namibia", "Windhoek", 516, "Africa/Windhoek"},
    {217, "ZW", "Zimbabwe", "Harare", 716, "Africa/Harare"},
    {218, "MU", "Mauritius", "Port Louis", 480, "Indian/Mauritius"},
    {219, "CV", "Cape Verde", "Praia", 132, "Atlantic/Cape_Verde"},
};
/* clang-format on */

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* ---- calendar ----------------------------------------------------------- */

#define DAY_S 86400
/* Instants are clamped to this many seconds either side of the epoch (about
 * 300 million years) so that calendar arithmetic cannot overflow. */
#define T_LIMIT INT64_C(10000000000000000)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t clamp_t(int64_t t)
{
    return t < -T_LIMIT ? -T_LIMIT : t > T_LIMIT ? T_LIMIT : t;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    assert(m >= 1 && m <= 12);
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static int64_t year_of(int64_t local_s)
{
    int64_t y;
    int m, d;
    civil_from_days(floor_div(local_s, DAY_S), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

typedef struct {
    const char *p, *end;
} cursor;

static int peek(const cursor *c)
{
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

static bool eat(cursor *c, char ch)
{
    if (peek(c) != (unsigned char)ch)
        return false;
    c->p++;
    return true;
}

static bool is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* 1..maxdigits decimal digits with a value in [lo, hi]. */
static bool number(cursor *c, int maxdigits, int lo, int hi, int *out)
{
    int v = 0, n = 0;
    while (n < maxdigits && is_digit(peek(c))) {
        v = v * 10 + (*c->p++ - '0');
        n++;
    }
    if (n == 0 || is_digit(peek(c)) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "CET", or quoted "<+0545>": at least three characters either way. */
static bool zone_name(cursor *c)
{
    const char *start = c->p;
    if (eat(c, '<')) {
        while (is_alpha(peek(c)) || is_digit(peek(c)) || peek(c) == '+' || peek(c) == '-')
            c->p++;
        return c->p - start >= 4 && eat(c, '>');
    }
    while (is_alpha(peek(c)))
        c->p++;
    return c->p - start >= 3;
}

/* [+-]h[h[h]][:mm[:ss]] in seconds; hours at most max_hours. */
static bool hms(cursor *c, int max_hours, int32_t *secs)
{
    int sign = 1, h, m = 0, s = 0;
    if (eat(c, '-'))
        sign = -1;
    else
        eat(c, '+');
    if (!number(c, 3, 0, max_hours, &h))
        return false;
    if (eat(c, ':')) {
        if (!number(c, 2, 0, 59, &m))
            return false;
        if (eat(c, ':') && !number(c, 2, 0, 59, &s))
            return false;
    }
    *secs = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* Jn, n or Mm.w.d, then an optional "/time" (default 02:00). */
static bool rule_date(cursor *c, tz_posix_date *d)
{
    const char *start = c->p;
    int a, w = 0, m = 0;
    if (eat(c, 'J')) {
        d->kind = 'J';
        if (!number(c, 3, 1, 365, &a))
            return false;
    } else if (eat(c, 'M')) {
        d->kind = 'M';
        if (!number(c, 2, 1, 12, &m) || !eat(c, '.') || !number(c, 1, 1, 5, &w) || !eat(c, '.') ||
            !number(c, 1, 0, 6, &a))
            return false;
    } else {
        d->kind = 'N';
        if (!number(c, 3, 0, 365, &a))
            return false;
    }
    d->day = (int16_t)a;
    d->month = (int8_t)m;
    d->week = (int8_t)w;
    d->secs = 7200;
    if (eat(c, '/') && !hms(c, 167, &d->secs))
        return false;
    size_t n = (size_t)(c->p - start);
    assert(n < sizeof d->text); /* bounded by the digit limits above */
    memcpy(d->text, start, n);
    d->text[n] = '\0';
    return true;
}

static bool rule_pair(cursor *c, tz_posix *p)
{
    return rule_date(c, &p->start) && eat(c, ',') && rule_date(c, &p->end);
}

/* A DST name without rules gets the US rules, as glibc and tzcode do. */
static bool default_rules(tz_posix *p)
{
    static const char us[] = "M3.2.0,M11.1.0";
    cursor c = {us, us + sizeof us - 1};
    return rule_pair(&c, p);
}

/* The part after the DST name: [offset][,start[/time],end[/time]]. */
static bool dst_part(cursor *c, tz_posix *p)
{
    int32_t off;
    p->has_dst = true;
    p->dst_off = p->std_off + 3600;
    if (peek(c) != ',' && c->p < c->end) {
        if (!hms(c, 24, &off))
            return false;
        p->dst_off = -off;
    }
    if (c->p == c->end)
        return default_rules(p);
    return eat(c, ',') && rule_pair(c, p);
}

bool tz_posix_parse(const char *s, size_t n, tz_posix *out)
{
    cursor c = {s, s + n};
    tz_posix p = {0};
    int32_t off;
    if (!zone_name(&c) || !hms(&c, 24, &off))
        return false;
    p.std_off = -off; /* POSIX offsets count west of Greenwich */
    p.dst_off = p.std_off;
    if (c.p < c.end && (!zone_name(&c) || !dst_part(&c, &p)))
        return false;
    if (c.p != c.end)
        return false;
    *out = p;
    return true;
}

/* Local (standard-time) day of a rule date in year y. */
static int64_t rule_day(const tz_posix_date *d, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (d->kind == 'J')
        return jan1 + d->day - 1 + (is_leap(y) && d->day >= 60);
    if (d->kind == 'N')
        return jan1 + d->day;
    assert(d->kind == 'M');
    int64_t first = days_from_civil(y, d->month, 1);
    int64_t day = first + (d->day - weekday(first) + 7) % 7 + (d->week - 1) * 7;
    while (day >= first + month_days(y, d->month))
        day -= 7; /* week 5: the last such weekday */
    return day;
}

/* The UTC instant of year y's change to daylight (start) or back (end). */
static int64_t posix_change(const tz_posix *p, int64_t y, bool start)
{
    const tz_posix_date *d = start ? &p->start : &p->end;
    return rule_day(d, y) * DAY_S + d->secs - (start ? p->std_off : p->dst_off);
}

/*
 * A year's changes lie within about a week of that year (rule times reach
 * +-167 h), and each recurs a year later, so the changes of the years
 * y-2 .. y+2 around t's local year y include both the latest change at or
 * before t and the first one after it, even for rules whose changes
 * overlap the new year.
 */
#define YEARS_AROUND 2

int32_t tz_posix_offset(const tz_posix *p, int64_t utc_s, bool *isdst)
{
    int64_t t = clamp_t(utc_s), best = INT64_MIN, year = year_of(t + p->std_off);
    bool dst = false;
    for (int64_t y = year - YEARS_AROUND; p->has_dst && y <= year + YEARS_AROUND; y++) {
        /* the latest change at or before t wins; on a tie (all-year DST as
         * "0/0,J365/25") the start of the next year wins over the end */
        int64_t e = posix_change(p, y, false), s = posix_change(p, y, true);
        if (e <= t && e > best) {
            best = e;
            dst = false;
        }
        if (s <= t && s >= best) {
            best = s;
            dst = true;
        }
    }
    if (isdst != NULL)
        *isdst = dst;
    return dst ? p->dst_off : p->std_off;
}

/* The first change instant after t, changing anything or not; none
 * beyond the clamping limit. */
static bool posix_next(const tz_posix *p, int64_t t, int64_t *out)
{
    if (!p->has_dst || t >= T_LIMIT)
        return false;
    t = clamp_t(t);
    int64_t best = INT64_MAX, year = year_of(t + p->std_off);
    for (int64_t y = year - YEARS_AROUND; y <= year + YEARS_AROUND; y++) {
        int64_t e = posix_change(p, y, false), s = posix_change(p, y, true);
        if (e > t && e < best)
            best = e;
        if (s > t && s < best)
            best = s;
    }
    *out = best;
    return best != INT64_MAX;
}

/* ---- TZif files ---------------------------------------------------------- */

typedef struct {
    int32_t utoff;
    bool isdst;
} tz_state;

struct tz_rules {
    size_t ntimes, ntypes;
    int64_t *times;   /* ascending */
    uint8_t *type_of; /* per transition, < ntypes */
    tz_state *types;  /* ntypes >= 1 */
    bool has_footer;
    tz_posix footer;
};

#define TZIF_HEADER 44
/* RFC 8536: offsets lie in -24:59:59 .. +25:59:59 */
#define UTOFF_MIN (-89999)
#define UTOFF_MAX 93599
/* POSIX offsets reach 24:59:59, their default DST one hour more: the same
 * bounds, which keep every offset within tz_format_date's range. */
_Static_assert(UTOFF_MAX / 60 < TZ_OFFSET_LIMIT && -UTOFF_MIN / 60 < TZ_OFFSET_LIMIT,
               "offsets fit tz_format_date");

typedef struct {
    unsigned char version; /* 0, or '2' and above */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_header(const unsigned char *p, size_t len, tzif_header *h)
{
    if (len < TZIF_HEADER || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return (h->version == 0 || h->version >= '2') && h->typecnt >= 1 && h->typecnt <= 256 &&
           h->charcnt >= 1 && (h->isutcnt == 0 || h->isutcnt == h->typecnt) &&
           (h->isstdcnt == 0 || h->isstdcnt == h->typecnt);
}

/* Bytes of the data block after a header, for 4- or 8-byte times. */
static uint64_t block_size(const tzif_header *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Transition times, then one type index per transition. */
static bool read_times(tz_rules *r, const unsigned char *p, unsigned tsize)
{
    const unsigned char *idx = p + r->ntimes * tsize;
    for (size_t i = 0; i < r->ntimes; i++) {
        r->times[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        if (i > 0 && r->times[i] <= r->times[i - 1])
            return false;
        r->type_of[i] = idx[i];
        if (r->type_of[i] >= r->ntypes)
            return false;
    }
    return true;
}

static bool read_types(tz_rules *r, const unsigned char *p, uint32_t charcnt)
{
    for (size_t i = 0; i < r->ntypes; i++, p += 6) {
        int32_t utoff = (int32_t)be32(p);
        if (utoff < UTOFF_MIN || utoff > UTOFF_MAX || p[4] > 1 || p[5] >= charcnt)
            return false;
        r->types[i] = (tz_state){utoff, p[4] == 1};
    }
    return true;
}

/* One data block; leap-second records are skipped (zoneinfo's own files
 * have none, the "right/" ones are not used). */
static cb_err read_block(tz_rules *r, const tzif_header *h, const unsigned char *p, unsigned tsize)
{
    r->ntimes = h->timecnt;
    r->ntypes = h->typecnt;
    r->times = malloc((r->ntimes + 1) * sizeof *r->times);
    r->type_of = malloc(r->ntimes + 1);
    r->types = malloc(r->ntypes * sizeof *r->types);
    if (r->times == NULL || r->type_of == NULL || r->types == NULL)
        return CB_EINTERNAL;
    if (!read_times(r, p, tsize) ||
        !read_types(r, p + (size_t)h->timecnt * (tsize + 1), h->charcnt))
        return CB_EBADREQ;
    return CB_EOK;
}

/* "\nTZ-string\n" after a v2+ block; an empty string means no footer. */
static cb_err read_footer(tz_rules *r, const unsigned char *p, size_t len)
{
    if (len == 0)
        return CB_EOK; /* tolerated: some writers omit it */
    const unsigned char *nl = len > 1 ? memchr(p + 1, '\n', len - 1) : NULL;
    if (p[0] != '\n' || nl == NULL)
        return CB_EBADREQ;
    size_t n = (size_t)(nl - (p + 1));
    if (n == 0)
        return CB_EOK;
    r->has_footer = tz_posix_parse((const char *)p + 1, n, &r->footer);
    return r->has_footer ? CB_EOK : CB_EBADREQ;
}

/* Finds the block to use: the v1 one, or the 64-bit one of v2+ files. */
static cb_err parse_layout(tz_rules *r, const unsigned char *data, size_t len)
{
    tzif_header h;
    if (!read_header(data, len, &h) || block_size(&h, 4) > len - TZIF_HEADER)
        return CB_EBADREQ;
    if (h.version == 0)
        return read_block(r, &h, data + TZIF_HEADER, 4);
    size_t off = TZIF_HEADER + (size_t)block_size(&h, 4);
    if (!read_header(data + off, len - off, &h) || h.version < '2' ||
        block_size(&h, 8) > len - off - TZIF_HEADER)
        return CB_EBADREQ;
    off += TZIF_HEADER;
    cb_err e = read_block(r, &h, data + off, 8);
    off += (size_t)block_size(&h, 8);
    return e != CB_EOK ? e : read_footer(r, data + off, len - off);
}

cb_err tz_rules_parse(const unsigned char *data, size_t len, tz_rules **out)
{
    tz_rules *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CB_EINTERNAL;
    cb_err e = parse_layout(r, data, len);
    if (e != CB_EOK) {
        tz_rules_free(r);
        return e;
    }
    *out = r;
    return CB_EOK;
}

void tz_rules_free(tz_rules *r)
{
    if (r == NULL)
        return;
    free(r->times);
    free(r->type_of);
    free(r->types);
    free(r);
}

/* ---- rules at an instant ------------------------------------------------- */

static tz_state state_at(const tz_rules *r, int64_t t)
{
    size_t n = r->ntimes;
    assert(r->ntypes >= 1);
    if (n == 0 || t >= r->times[n - 1]) {
        if (r->has_footer) {
            tz_state s;
            s.utoff = tz_posix_offset(&r->footer, t, &s.isdst);
            return s;
        }
        return r->types[n == 0 ? 0 : r->type_of[n - 1]];
    }
    if (t < r->times[0])
        return r->types[0];    /* RFC 8536: type 0 before the first transition */
    size_t lo = 0, hi = n - 1; /* times[lo] <= t < times[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return r->types[r->type_of[lo]];
}

int32_t tz_rules_offset(const tz_rules *r, int64_t utc_s, bool *isdst)
{
    tz_state s = state_at(r, clamp_t(utc_s));
    if (isdst != NULL)
        *isdst = s.isdst;
    return s.utoff;
}

/* The first transition after t, from the table or else the footer. */
static bool next_raw(const tz_rules *r, int64_t t, int64_t *out)
{
    size_t n = r->ntimes;
    if (n > 0 && t < r->times[n - 1]) {
        size_t lo = 0, hi = n - 1; /* the answer lies in [lo, hi] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (r->times[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        *out = r->times[lo];
        return true;
    }
    return r->has_footer && posix_next(&r->footer, t, out);
}

/* The first instant after t at which the offset or the DST flag change
 * (transitions that only rename the zone are passed over). */
static bool next_change(const tz_rules *r, int64_t t, int64_t *out)
{
    tz_state s = state_at(r, t);
    for (int i = 0; i < 64 && next_raw(r, t, &t); i++) {
        tz_state u = state_at(r, t);
        if (u.utoff != s.utoff || u.isdst != s.isdst) {
            *out = t;
            return true;
        }
    }
    return false;
}

/* ---- the loaded set ------------------------------------------------------ */

struct tz_zone {
    const tz_row *row;
    tz_rules *rules; /* NULL: UTC without its file, offset 0 */
};

static tz_zone *zones;
static size_t nzones;
static const tz_zone utc_fallback = {&rows[0], NULL};

#define TZ_FILE_MAX (1 << 20)

static cb_err read_all(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return CB_EINTERNAL;
        got += (size_t)n;
    }
    return CB_EOK;
}

static cb_err load_file(const char *path, tz_rules **out)
{
    cb_err e = CB_ENOTFOUND;
    unsigned char *buf = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return e;
    e = CB_EBADREQ;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > TZ_FILE_MAX)
        goto out;
    e = CB_EINTERNAL;
    if ((buf = malloc((size_t)st.st_size)) == NULL)
        goto out;
    e = read_all(fd, buf, (size_t)st.st_size);
    if (e == CB_EOK)
        e = tz_rules_parse(buf, (size_t)st.st_size, out);
out:
    free(buf);
    close(fd);
    return e;
}

static bool load_row(const char *dir, const tz_row *row, tz_zone *z)
{
    char path[PATH_MAX];
    int w = snprintf(path, sizeof path, "%s/%s", dir, row->iana);
    cb_err e = w > 0 && (size_t)w < sizeof path ? load_file(path, &z->rules) : CB_EBADREQ;
    z->row = row;
    if (e == CB_EOK)
        return true;
    z->rules = NULL;
    log_warn("time zone %s (%s): %s", row->code, path,
             e == CB_ENOTFOUND ? "no such file" : "not a usable TZif file");
    return row == &rows[0]; /* UTC stays, at offset 0 */
}

static bool dir_readable(const char *dir)
{
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(dir, R_OK | X_OK) == 0;
}

void tz_shutdown(void)
{
    for (size_t i = 0; i < nzones; i++)
        tz_rules_free(zones[i].rules);
    free(zones);
    zones = NULL;
    nzones = 0;
}

cb_err tz_init(const char *zoneinfo_dir)
{
    const char *dir = zoneinfo_dir != NULL ? zoneinfo_dir : TZ_DEFAULT_DIR;
    tz_shutdown();
    if (!dir_readable(dir)) {
        log_error("time zones: cannot read %s (install tzdata); only UTC is known", dir);
        return CB_EINTERNAL;
    }
    if ((zones = calloc(NROWS, sizeof *zones)) == NULL)
        return CB_EINTERNAL;
    for (size_t i = 0; i < NROWS; i++)
        if (load_row(dir, &rows[i], &zones[nzones]))
            nzones++;
    log_info("time zones: %zu of %zu locations loaded from %s", nzones, NROWS, dir);
    return CB_EOK;
}

/* The set readers see: the loaded one, or UTC alone before tz_init. */
static const tz_zone *current_set(size_t *n)
{
    *n = nzones > 0 ? nzones : 1;
    return nzones > 0 ? zones : &utc_fallback;
}

size_t tz_count(void)
{
    size_t n;
    current_set(&n);
    return n;
}

const tz_zone *tz_at(size_t i)
{
    size_t n;
    const tz_zone *set = current_set(&n);
    assert(i < n);
    return &set[i];
}

size_t tz_table_size(void)
{
    return NROWS;
}

const tz_zone *tz_utc(void)
{
    return tz_at(0); /* rows[0] is UTC and is never dropped */
}

const tz_zone *tz_find(const char *code)
{
    size_t n;
    const tz_zone *set = current_set(&n);
    for (size_t i = 0; code != NULL && i < n; i++)
        if (strcasecmp(set[i].row->code, code) == 0)
            return &set[i];
    return NULL;
}

int tz_id(const tz_zone *z)
{
    return z->row->id;
}

const char *tz_code(const tz_zone *z)
{
    return z->row->code;
}

const char *tz_name(const tz_zone *z)
{
    return z->row->name;
}

const char *tz_cities(const tz_zone *z)
{
    return z->row->cities;
}

int tz_iso(const tz_zone *z)
{
    return z->row->iso;
}

const char *tz_iana(const tz_zone *z)
{
    return z->row->iana;
}

int tz_offset_minutes(const tz_zone *z, int64_t utc_ms)
{
    if (z->rules == NULL)
        return 0;
    return tz_rules_offset(z->rules, floor_div(utc_ms, 1000), NULL) / 60;
}

/* ---- a year's rules ------------------------------------------------------ */

/*
 * A year is cut into periods at every change of offset or DST flag. The
 * standard rule is the first standard period that begins in the year, or
 * else the one in force on 1 January (start then reads 1/1); the daylight
 * rule likewise. A period that does not end within a year after the year
 * reads as ending 31/12. Where tzdata marks the smaller offset as daylight
 * (Ireland's winter GMT, Morocco's Ramadan time: "negative DST"), the two
 * rules are swapped so that daylight is always the larger offset.
 */
typedef struct {
    int64_t start, end;
    bool clipped, open; /* no change at start / none at end */
    int32_t before;     /* offset in force just before start */
    tz_state st;
} period;

#define MAX_PERIODS 16

static int64_t local_year_start(const tz_rules *r, int64_t y)
{
    int64_t t = days_from_civil(y, 1, 1) * DAY_S;
    return t - state_at(r, t).utoff;
}

static size_t year_periods(const tz_rules *r, int64_t t0, int64_t t1, period *out)
{
    size_t n = 0;
    int64_t cur = t0, c = 0;
    int32_t before = 0;
    while (n < MAX_PERIODS) {
        period *p = &out[n++];
        *p = (period){.start = cur, .clipped = n == 1, .before = before};
        p->st = state_at(r, cur);
        p->open = !next_change(r, cur, &c) || c >= t1 + 366 * DAY_S;
        p->end = p->open ? INT64_MAX : c;
        if (p->open || c >= t1)
            break;
        before = p->st.utoff;
        cur = c;
    }
    return n;
}

static const period *pick(const period *ps, size_t n, bool dst)
{
    for (size_t i = 1; i < n; i++)
        if (ps[i].st.isdst == dst)
            return &ps[i];
    return ps[0].st.isdst == dst ? &ps[0] : NULL;
}

static void local_date(int64_t t, int32_t off, int *day, int *month)
{
    int64_t y;
    civil_from_days(floor_div(t + off, DAY_S), &y, month, day);
}

/* How the change at t recurs: the footer's rule when it produced t, else
 * the POSIX "Mm.w.d/time" that matches t's local date and time. */
static void change_pattern(const tz_rules *r, int64_t t, int32_t before, char *out)
{
    int64_t local = t + before, y, days = floor_div(local, DAY_S);
    int m, d;
    if (r->has_footer && r->footer.has_dst) {
        for (int start = 0; start < 2; start++) {
            const tz_posix_date *pd = start ? &r->footer.start : &r->footer.end;
            if (posix_change(&r->footer, year_of(local), start) == t) {
                snprintf(out, TZ_PATTERN_MAX, "%s", pd->text);
                return;
            }
        }
    }
    civil_from_days(days, &y, &m, &d);
    int secs = (int)(local - days * DAY_S), week = d + 7 > month_days(y, m) ? 5 : (d - 1) / 7 + 1;
    int w = snprintf(out, TZ_PATTERN_MAX, "M%d.%d.%d/%d", m, week, weekday(days), secs / 3600);
    size_t at = w > 0 && w < TZ_PATTERN_MAX ? (size_t)w : 0;
    if (secs % 3600 != 0)
        snprintf(out + at, TZ_PATTERN_MAX - at, ":%02d", secs / 60 % 60);
}

static void period_rule(const tz_rules *r, const period *p, tz_rule *out)
{
    *out = (tz_rule){.start_day = 1, .start_month = 1, .end_day = 31, .end_month = 12};
    out->offset_minutes = p->st.utoff / 60;
    if (!p->clipped) {
        local_date(p->start, p->before, &out->start_day, &out->start_month);
        change_pattern(r, p->start, p->before, out->start_pattern);
    }
    if (!p->open) {
        local_date(p->end, p->st.utoff, &out->end_day, &out->end_month);
        change_pattern(r, p->end, p->st.utoff, out->end_pattern);
    }
}

void tz_year_rules(const tz_zone *z, int year, tz_year *out)
{
    *out = (tz_year){.std = {.start_day = 1, .start_month = 1, .end_day = 31, .end_month = 12}};
    if (z->rules == NULL)
        return;
    period ps[MAX_PERIODS];
    size_t n = year_periods(z->rules, local_year_start(z->rules, year),
                            local_year_start(z->rules, (int64_t)year + 1), ps);
    const period *std = pick(ps, n, false), *dst = pick(ps, n, true);
    if (std == NULL) {
        std = &ps[0]; /* daylight all year: report it as the standard */
        dst = NULL;
    }
    period_rule(z->rules, std, &out->std);
    out->has_dst = dst != NULL;
    if (dst != NULL)
        period_rule(z->rules, dst, &out->dst);
    if (out->has_dst && out->dst.offset_minutes < out->std.offset_minutes) {
        tz_rule tmp = out->std;
        out->std = out->dst;
        out->dst = tmp;
    }
}

/* ---- dates and the header ------------------------------------------------ */

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z */
#define MS_MIN INT64_C(-62135596800000)
#define MS_MAX INT64_C(253402300799999)

void tz_format_date(int64_t ms, int offset_minutes, char out[TEXT_DATE_MAX])
{
    assert(offset_minutes > -TZ_OFFSET_LIMIT && offset_minutes < TZ_OFFSET_LIMIT);
    if (ms == INT64_MIN) {
        text_format_date(ms, out);
        return;
    }
    ms = ms < MS_MIN ? MS_MIN : ms > MS_MAX ? MS_MAX : ms;
    int64_t local = ms + (int64_t)offset_minutes * 60000, y;
    int64_t days = floor_div(local, INT64_C(86400000));
    int rest = (int)(local - days * 86400000), m, d;
    civil_from_days(days, &y, &m, &d);
    int w = snprintf(out, TEXT_DATE_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m, d,
                     rest / 3600000, rest / 60000 % 60, rest / 1000 % 60);
    size_t n = w > 0 && w < TEXT_DATE_MAX ? (size_t)w : 0;
    if (rest % 1000 != 0) {
        w = snprintf(out + n, TEXT_DATE_MAX - n, ".%03d", rest % 1000);
        n += w > 0 && (size_t)w < TEXT_DATE_MAX - n ? (size_t)w : 0;
    }
    int a = offset_minutes < 0 ? -offset_minutes : offset_minutes;
    snprintf(out + n, TEXT_DATE_MAX - n, "%c%02d:%02d", offset_minutes < 0 ? '-' : '+', a / 60,
             a % 60);
}

#define CODE_MAX 16

bool tz_parse_header(const char *so_timezone, const tz_zone **zone, bool *include_offset)
{
    if (so_timezone == NULL)
        return false;
    const char *comma = strchr(so_timezone, ',');
    size_t len = strlen(so_timezone),
           code_len = comma != NULL ? (size_t)(comma - so_timezone) : len;
    text_span c = text_trim(so_timezone, code_len);
    char code[CODE_MAX];
    if (c.n == 0 || c.n >= CODE_MAX)
        return false;
    memcpy(code, c.p, c.n);
    code[c.n] = '\0';
    const tz_zone *z = tz_find(code);
    if (z == NULL)
        return false;
    if (comma != NULL) {
        text_span k = text_trim(comma + 1, len - code_len - 1);
        if (!text_ieq(k.p, k.n, "includeTZOffset"))
            return false;
    }
    *zone = z;
    *include_offset = comma != NULL;
    return true;
}
