/*
 * JSON text helpers: escaping and the gateway's error body.
 */

#include <string.h>

#include "sg_json.h"


static const char  sg_hex[] = "0123456789abcdef";


const unsigned char  sg_json_ascii_len[128] = {
    6, 6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 6, 6, 2, 6, 6,     /* \t \n \r */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1,     /* '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6      /* DEL */
};


size_t
sg_utf8_sequence(const unsigned char *p, size_t n)
{
    size_t         len, i;
    unsigned char  c, lo, hi;

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return len;
}


size_t
sg_json_escaped_len(const unsigned char *src, size_t len)
{
    size_t  n, seq;

    n = 0;

    while (len) {
        if (*src < 0x80) {
            n += sg_json_ascii_len[*src++];
            len--;
            continue;
        }

        seq = sg_utf8_sequence(src, len);

        if (seq == 0) {
            n += sizeof("\\ufffd") - 1;
            seq = 1;

        } else {
            n += seq;
        }

        src += seq;
        len -= seq;
    }

    return n;
}


unsigned char *
sg_json_escape(unsigned char *dst, const unsigned char *src, size_t len)
{
    size_t         seq;
    unsigned char  c;

    while (len) {
        c = *src;

        /* most bytes are copied as they are */
        if (c < 0x80 && sg_json_ascii_len[c] == 1) {
            *dst++ = c;
            src++;
            len--;
            continue;
        }

        seq = sg_utf8_sequence(src, len);

        if (seq == 0) {
            memcpy(dst, "\\ufffd", sizeof("\\ufffd") - 1);
            dst += sizeof("\\ufffd") - 1;
            src++;
            len--;
            continue;
        }

        if (seq > 1) {
            memcpy(dst, src, seq);
            dst += seq;
            src += seq;
            len -= seq;
            continue;
        }

        c = *src++;
        len--;

        switch (c) {
        case '"':
        case '\\':
            *dst++ = '\\';
            *dst++ = c;
            break;

        case '\n':
            *dst++ = '\\';
            *dst++ = 'n';
            break;

        case '\r':
            *dst++ = '\\';
            *dst++ = 'r';
            break;

        case '\t':
            *dst++ = '\\';
            *dst++ = 't';
            break;

        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(dst, "\\u00", 4);
                dst[4] = sg_hex[c >> 4];
                dst[5] = sg_hex[c & 0xf];
                dst += 6;

            } else {
                *dst++ = c;
            }
        }
    }

    return dst;
}


#define SG_ERROR_HEAD  "{\"errors\":[{\"message\":\""
#define SG_ERROR_TAIL  "}]}"


size_t
sg_error_body_len(const sg_error_t *err)
{
    size_t  len;

    len = sizeof(SG_ERROR_HEAD) - 1
          + sg_json_escaped_len((const unsigned char *) err->message,
                                err->message_len)
          + sizeof("\",\"\":") - 1 + strlen(err->member)
          + sizeof(SG_ERROR_TAIL) - 1;

    if (err->name == NULL) {
        return len + sizeof("null") - 1;
    }

    return len + 2 + sg_json_escaped_len(err->name, err->name_len);
}


unsigned char *
sg_error_body(unsigned char *dst, const sg_error_t *err)
{
    size_t  n;

    memcpy(dst, SG_ERROR_HEAD, sizeof(SG_ERROR_HEAD) - 1);
    dst += sizeof(SG_ERROR_HEAD) - 1;

    dst = sg_json_escape(dst, (const unsigned char *) err->message,
                         err->message_len);

    memcpy(dst, "\",\"", 3);
    dst += 3;

    n = strlen(err->member);
    memcpy(dst, err->member, n);
    dst += n;

    *dst++ = '"';
    *dst++ = ':';

    if (err->name == NULL) {
        memcpy(dst, "null", 4);
        dst += 4;

    } else {
        *dst++ = '"';
        dst = sg_json_escape(dst, err->name, err->name_len);
        *dst++ = '"';
    }

    memcpy(dst, SG_ERROR_TAIL, sizeof(SG_ERROR_TAIL) - 1);

    return dst + sizeof(SG_ERROR_TAIL) - 1;
}


const char *
sg_http_reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 494: return "Request Header Too Large";
    case 495: return "SSL Certificate Error";
    case 496: return "SSL Certificate Required";
    case 497: return "HTTP Request Sent to HTTPS Port";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default:  return "Unknown";
    }
}
