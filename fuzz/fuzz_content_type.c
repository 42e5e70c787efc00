/*
 * sg_content_type_is_json on arbitrary bytes: never reads out of bounds,
 * and accepts nothing that does not start (after blanks) with
 * application/json in some letter case.
 */

#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include "../ngx_sendgrid_integrations_module/sg_content_type.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t  i;

    if (!sg_content_type_is_json(data, size)) {
        return 0;
    }

    for (i = 0; i < size && (data[i] == ' ' || data[i] == '\t'); i++) {
        /* void */
    }

    if (size - i < 16 || strncasecmp((const char *) data + i,
                                     "application/json", 16) != 0)
    {
        abort();
    }

    for (i = 0; i < size; i++) {
        if (data[i] < 0x20 && data[i] != '\t') {
            abort();
        }
    }

    return 0;
}
