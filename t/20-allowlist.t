# The route allowlist seen from a client: hostile and non-canonical raw
# requests get a SendGrid-shaped 404, 405 or 400 (or nginx's own answer,
# before any module runs) and never reach an upstream; canonical ones do,
# with the very target the client sent.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use SGTest;

my $t = SGTest->new;
my $key = 'SG.allowlist-key.QWERTYuiop0123456789';
$t->key_file('global.key', "$key\n");

# The default server is a gateway as a whole: the canonical location, and
# "location /" for whatever nginx's URI normalization moves out of it.
# The "edge" server has the canonical location only.
$t->start(<<'CONF');
    log_format ops '$status op=[$sendgrid_operation] '
                   'region=[$sendgrid_region] "$request" '
                   'subuser=[$sendgrid_subuser] '
                   'host=[$sendgrid_upstream_host] error=[$sendgrid_error]';
    access_log %%DIR%%/logs/ops.log ops;

    server {
        listen 127.0.0.1:%%PORT%% default_server;
        server_name localhost;

        sendgrid_api_key_file %%DIR%%/global.key;

        location /v3/marketing/integrations {
            sendgrid_integrations on;
            proxy_pass http://$sendgrid_upstream_host;
            add_header X-Operation "op=[$sendgrid_operation]" always;
            add_header X-Location canonical always;
        }

        location / {
            sendgrid_integrations on;
            proxy_pass http://$sendgrid_upstream_host;
            add_header X-Operation "op=[$sendgrid_operation]" always;
            add_header X-Location root always;
        }
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name edge;

        location /v3/marketing/integrations {
            sendgrid_integrations on;
            sendgrid_api_key_file %%DIR%%/global.key;
            proxy_pass http://$sendgrid_upstream_host;
            add_header X-Location canonical always;
        }

        location / {
            return 404;
        }
    }
CONF

my $C = '/v3/marketing/integrations';

my $post = '{"destination":"Segment","filters":{"email_events":["open","click"]},'
         . '"properties":{"write_key":"a123456","destination_region":"US"}}';
my $patch = '{"label":"new label"}';

# the exact answers of the gateway
my $NOT_FOUND = '{"errors":[{"message":"resource not found","field":null}]}';
my $NOT_ALLOWED = '{"errors":[{"message":"method not allowed","field":null}]}';
my $EMPTY_PARAM =
    '{"errors":[{"message":"empty query parameter","parameter":""}]}';
my $IDS_REQUIRED =
    '{"errors":[{"message":"ids is required","parameter":"ids"}]}';
my $OVERRIDE = '{"errors":[{"message":"method override headers are not '
             . 'allowed","field":null}]}';
my $HAS_BODY = '{"errors":[{"message":"this request must not have a body",'
             . '"field":"request"}]}';

sub unknown {
    my ($name) = @_;
    return '{"errors":[{"message":"unknown query parameter","parameter":"'
           . $name . '"}]}';
}

sub empty_id {
    my ($n) = @_;
    return '{"errors":[{"message":"IDs cannot be an empty string",'
           . '"parameter":"ids[' . $n . ']"}]}';
}

sub bad_id {
    my ($n) = @_;
    return '{"errors":[{"message":"IDs must be 1 to 128 characters of A-Z, '
           . 'a-z, 0-9, _ and -","parameter":"ids[' . $n . ']"}]}';
}

my $ALLOW_C = 'GET, POST, DELETE';
my $ALLOW_I = 'GET, PATCH';

# raw request helpers: HTTP/1.0, no Host (the default server answers)
sub req {
    my ($method, $target, @headers) = @_;
    my $r = "$method $target HTTP/1.0\r\n";
    $r .= "$_\r\n" for @headers;
    return "$r\r\n";
}

sub req_body {
    my ($method, $target, $body, @headers) = @_;
    my $r = "$method $target HTTP/1.0\r\n";
    $r .= "$_\r\n" for @headers;
    return $r . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

sub json_req {
    my ($method, $target, $body, @headers) = @_;
    return req_body($method, $target, $body,
                    'Content-Type: application/json', @headers);
}

sub req11 {
    my ($method, $target, @headers) = @_;
    my $r = "$method $target HTTP/1.1\r\nHost: localhost\r\n";
    $r .= "$_\r\n" for @headers;
    return "$r" . "Connection: close\r\n\r\n";
}

my $id128 = 'A' x 64 . 'z' x 63 . '9';
my $id129 = $id128 . '_';

# [ what, raw request, status, exact body, Allow, operation, location ]
# (location: which of the two gateway locations answers, after nginx's
# own URI normalization).  $sendgrid_operation is empty on every 404 and
# 405 (the route is none of the five); a 400 refuses one of the five
# operations, which $sendgrid_operation names (and the "operation" of the
# normalized error line).
my @refused = (

    # dot segments, raw and percent-encoded
    [ 'dot-dot segment', req(GET => "$C/../integrations"), 404, $NOT_FOUND ],
    [ 'dot segment', req(GET => '/v3/marketing/./integrations'), 404,
      $NOT_FOUND ],
    [ 'dot segment before an id', req(GET => "$C/./abc"), 404, $NOT_FOUND ],
    [ '%2e%2e segment', req(GET => "$C/%2e%2e/integrations"), 404,
      $NOT_FOUND ],
    [ '%2E segment', req(GET => "$C/%2E"), 404, $NOT_FOUND ],
    [ '.%2e segment', req(GET => "$C/.%2e/integrations"), 404, $NOT_FOUND ],
    [ '%2e%2e%2f', req(GET => "$C/%2e%2e%2fintegrations"), 404, $NOT_FOUND ],
    [ '..%2f leaves the location', req(GET => "$C/..%2f"), 404, $NOT_FOUND,
      undef, '', 'root' ],
    [ 'trailing .. leaves the location', req(GET => "$C/.."), 404,
      $NOT_FOUND, undef, '', 'root' ],
    [ '../../.. leaves the location', req(GET => "$C/../../../x"), 404,
      $NOT_FOUND, undef, '', 'root' ],
    [ 'id of one dot', req(GET => "$C/."), 404, $NOT_FOUND ],

    # encoded slashes, doubled and trailing slashes
    [ '%2f between segments', req(GET => '/v3/marketing%2fintegrations'),
      404, $NOT_FOUND ],
    [ '%2F before an id', req(GET => '/v3/marketing%2Fintegrations/abc'),
      404, $NOT_FOUND ],
    [ '%2F inside an id', req(GET => "$C/abc%2Fdef"), 404, $NOT_FOUND ],
    [ '%2F at the end', req(GET => "$C%2F"), 404, $NOT_FOUND ],
    [ '// inside', req(GET => '/v3//marketing/integrations'), 404,
      $NOT_FOUND ],
    [ '// at the start', req(GET => "/$C"), 404, $NOT_FOUND ],
    [ '// before an id', req(GET => "$C//abc"), 404, $NOT_FOUND ],
    [ '// at the end', req(GET => "$C//"), 404, $NOT_FOUND ],
    [ 'trailing slash', req(GET => "$C/"), 404, $NOT_FOUND ],
    [ 'trailing slash after an id', req(GET => "$C/abc/"), 404, $NOT_FOUND ],
    [ 'POST with a trailing slash', json_req(POST => "$C/", $post), 404,
      $NOT_FOUND ],
    [ 'DELETE with a trailing slash', req(DELETE => "$C/?ids=a"), 404,
      $NOT_FOUND ],
    [ 'a second segment after the id', req(GET => "$C/abc/def"), 404,
      $NOT_FOUND ],

    # path parameters, encoded bytes, backslashes
    [ ';parameter on the collection', req(GET => "$C;x=1"), 404, $NOT_FOUND ],
    [ ';parameter on an id', req(GET => "$C/abc;v=1"), 404, $NOT_FOUND ],
    [ 'PATCH with ;jsessionid', json_req(PATCH => "$C/abc;jsessionid=1",
                                         $patch), 404, $NOT_FOUND ],
    [ '%0d%0a header injection', req(GET => "$C/abc%0d%0aX-Injected:%201"),
      404, $NOT_FOUND ],
    [ '%0a in an id', req(GET => "$C/abc%0a"), 404, $NOT_FOUND ],
    [ '%3F instead of ?', req(GET => "$C%3Fids=1"), 404, $NOT_FOUND ],
    [ 'DELETE with %3F', req(DELETE => "$C%3Fids=a"), 404, $NOT_FOUND ],
    [ '%20 after the collection', req(GET => "$C%20"), 404, $NOT_FOUND ],
    [ 'backslash before an id', req(GET => "$C\\abc"), 404, $NOT_FOUND ],
    [ 'backslash between segments', req(GET => '/v3/marketing\\integrations'),
      404, $NOT_FOUND, undef, '', 'root' ],

    # odd and overlong ids
    [ 'id %41', req(GET => "$C/%41"), 404, $NOT_FOUND ],
    [ 'id ab%63', req(GET => "$C/ab%63"), 404, $NOT_FOUND ],
    [ 'id %2541', req(GET => "$C/%2541"), 404, $NOT_FOUND ],
    [ 'id ~', req(GET => "$C/~"), 404, $NOT_FOUND ],
    [ 'id a.b', req(GET => "$C/a.b"), 404, $NOT_FOUND ],
    [ 'id with %20', req(GET => "$C/abc%20"), 404, $NOT_FOUND ],
    [ 'id in UTF-8', req(GET => "$C/caf\xc3\xa9"), 404, $NOT_FOUND ],
    [ 'id of a snowman', req(GET => "$C/\xe2\x98\x83"), 404, $NOT_FOUND ],
    [ 'id of 129 characters', req(GET => "$C/$id129"), 404, $NOT_FOUND ],
    [ 'PATCH an id of 129 characters', json_req(PATCH => "$C/$id129", $patch),
      404, $NOT_FOUND ],

    # fragments
    [ '#fragment on the collection', req(GET => "$C#frag"), 404, $NOT_FOUND ],
    [ '#fragment on an id', req(GET => "$C/abc#frag"), 404, $NOT_FOUND ],
    [ '#fragment after ids', req(DELETE => "$C?ids=a#b"), 404, $NOT_FOUND ],

    # neighbours of the collection
    [ 'prefix integrationsX', req(GET => "${C}X"), 404, $NOT_FOUND ],
    [ 'prefix integrations-v2', req(GET => "$C-v2/abc"), 404, $NOT_FOUND ],
    [ 'upper-case V3', req(GET => '/V3/marketing/integrations'), 404,
      $NOT_FOUND, undef, '', 'root' ],
    [ 'parent path', req(GET => '/v3/marketing'), 404, $NOT_FOUND, undef, '',
      'root' ],
    [ 'root', req(GET => '/'), 404, $NOT_FOUND, undef, '', 'root' ],

    # absolute-form targets whose path is not canonical
    [ 'absolute-form ..%2f', req11(GET => "http://localhost$C/..%2f"), 404,
      $NOT_FOUND, undef, '', 'root' ],
    [ 'absolute-form //', req11(GET => "http://localhost/$C"), 404,
      $NOT_FOUND ],
    [ 'absolute-form dot segment',
      req11(GET => 'http://localhost/v3/marketing/./integrations'), 404,
      $NOT_FOUND ],
    [ 'absolute-form trailing slash', req11(GET => "http://localhost$C/"),
      404, $NOT_FOUND ],

    # methods: 405 with the exact Allow header
    [ 'PUT on the collection', req(PUT => $C), 405, $NOT_ALLOWED, $ALLOW_C ],
    [ 'PUT on an id', json_req(PUT => "$C/abc", $patch), 405, $NOT_ALLOWED,
      $ALLOW_I ],
    [ 'HEAD on the collection', req(HEAD => $C), 405, '', $ALLOW_C ],
    [ 'HEAD on an id', req(HEAD => "$C/abc"), 405, '', $ALLOW_I ],
    [ 'OPTIONS on the collection', req(OPTIONS => $C), 405, $NOT_ALLOWED,
      $ALLOW_C ],
    [ 'OPTIONS on an id', req(OPTIONS => "$C/abc"), 405, $NOT_ALLOWED,
      $ALLOW_I ],
    [ 'PATCH on the collection', json_req(PATCH => $C, $patch), 405,
      $NOT_ALLOWED, $ALLOW_C ],
    [ 'POST on an id', json_req(POST => "$C/abc", $post), 405, $NOT_ALLOWED,
      $ALLOW_I ],
    [ 'DELETE on an id', req(DELETE => "$C/abc"), 405, $NOT_ALLOWED,
      $ALLOW_I ],
    [ 'PROPFIND on the collection', req(PROPFIND => $C), 405, $NOT_ALLOWED,
      $ALLOW_C ],
    [ 'GETX on an id', req(GETX => "$C/abc"), 405, $NOT_ALLOWED, $ALLOW_I ],
    [ 'the method before the query and override',
      req(PUT => "$C?x=1", 'X-HTTP-Method: GET'), 405, $NOT_ALLOWED,
      $ALLOW_C ],

    # query parameters on every operation
    [ 'list with ids', req(GET => "$C?ids=1"), 400, unknown('ids'), undef,
      'list' ],
    [ 'list with limit', req(GET => "$C?limit=10"), 400, unknown('limit'),
      undef, 'list' ],
    [ 'list with an empty query', req(GET => "$C?"), 400, $EMPTY_PARAM, undef,
      'list' ],
    [ 'list with a backslash in a name', req(GET => "$C?a\\b=1"), 400,
      unknown('a\\\\b'), undef, 'list' ],
    [ 'create with a parameter', json_req(POST => "$C?x=1", $post), 400,
      unknown('x'), undef, 'create' ],
    [ 'get with a parameter', req(GET => "$C/abc?x"), 400, unknown('x'),
      undef, 'get' ],
    [ 'get with an empty query', req(GET => "$C/abc?"), 400, $EMPTY_PARAM,
      undef, 'get' ],
    [ 'update with a parameter', json_req(PATCH => "$C/abc?label=x", $patch),
      400, unknown('label'), undef, 'update' ],
    [ 'delete with a parameter after ids', req(DELETE => "$C?ids=a&x=1"), 400,
      unknown('x'), undef, 'delete' ],
    [ 'delete with a parameter before ids', req(DELETE => "$C?x=1&ids=a"),
      400, unknown('x'), undef, 'delete' ],
    [ 'delete with a trailing &', req(DELETE => "$C?ids=a&"), 400,
      $EMPTY_PARAM, undef, 'delete' ],
    [ 'delete with a leading &', req(DELETE => "$C?&ids=a"), 400,
      $EMPTY_PARAM, undef, 'delete' ],
    [ 'delete with &&', req(DELETE => "$C?ids=a&&ids=b"), 400, $EMPTY_PARAM,
      undef, 'delete' ],
    [ 'delete with an empty query', req(DELETE => "$C?"), 400, $EMPTY_PARAM,
      undef, 'delete' ],
    [ 'a quote in a parameter name', req(DELETE => "$C?a\"b=1"), 400,
      unknown('a\\"b'), undef, 'delete' ],
    [ 'invalid UTF-8 in a parameter name', req(DELETE => "$C?\xff\xfe=1"),
      400, unknown('\\ufffd\\ufffd'), undef, 'delete' ],
    [ 'an encoded NUL in a parameter name', req(DELETE => "$C?a%00b=1"), 400,
      unknown('a%00b'), undef, 'delete' ],
    [ 'a parameter name of 100 bytes', req(DELETE => "$C?" . 'p' x 100 . '=1'),
      400, unknown('p' x 64), undef, 'delete' ],

    # ids
    [ 'missing ids', req(DELETE => $C), 400, $IDS_REQUIRED, undef,
      'delete' ],
    [ 'ids without =', req(DELETE => "$C?ids"), 400, empty_id(0), undef,
      'delete' ],
    [ 'ids=', req(DELETE => "$C?ids="), 400, empty_id(0), undef, 'delete' ],
    [ 'ids=a,,b', req(DELETE => "$C?ids=a,,b"), 400, empty_id(1), undef,
      'delete' ],
    [ 'ids with a trailing comma', req(DELETE => "$C?ids=a,"), 400,
      empty_id(1), undef, 'delete' ],
    [ 'ids with a trailing %2C', req(DELETE => "$C?ids=a%2C"), 400,
      empty_id(1), undef, 'delete' ],
    [ 'ids with a leading comma', req(DELETE => "$C?ids=,a"), 400,
      empty_id(0), undef, 'delete' ],
    [ 'ids=a,%2c', req(DELETE => "$C?ids=a,%2c"), 400, empty_id(1), undef,
      'delete' ],
    [ 'a second ids= empty', req(DELETE => "$C?ids=a&ids="), 400,
      empty_id(1), undef, 'delete' ],
    [ 'ids counted across parameters', req(DELETE => "$C?ids=a,b&ids=c,,d"),
      400, empty_id(3), undef, 'delete' ],
    [ 'ids with a dot', req(DELETE => "$C?ids=a.b"), 400, bad_id(0), undef,
      'delete' ],
    [ 'ids with a semicolon', req(DELETE => "$C?ids=a;b"), 400, bad_id(0),
      undef, 'delete' ],
    [ 'ids with %41', req(DELETE => "$C?ids=%41"), 400, bad_id(0), undef,
      'delete' ],
    [ 'ids with +', req(DELETE => "$C?ids=a+b"), 400, bad_id(0), undef,
      'delete' ],
    [ 'ids with %20', req(DELETE => "$C?ids=ok,a%20b"), 400, bad_id(1), undef,
      'delete' ],
    [ 'ids with UTF-8', req(DELETE => "$C?ids=ok,caf\xc3\xa9"), 400,
      bad_id(1), undef, 'delete' ],
    [ 'ids with a cut %2', req(DELETE => "$C?ids=a%2"), 400, bad_id(0),
      undef, 'delete' ],
    [ 'ids==a', req(DELETE => "$C?ids==a"), 400, bad_id(0), undef,
      'delete' ],
    [ 'an id of 129 characters', req(DELETE => "$C?ids=$id129"), 400,
      bad_id(0), undef, 'delete' ],
    [ 'a second id of 129 characters', req(DELETE => "$C?ids=a,$id129"), 400,
      bad_id(1), undef, 'delete' ],
    [ 'IDS=', req(DELETE => "$C?IDS=a"), 400, unknown('IDS'), undef,
      'delete' ],
    [ 'Ids=', req(DELETE => "$C?Ids=a"), 400, unknown('Ids'), undef,
      'delete' ],
    [ 'ids[]=', req(DELETE => "$C?ids[]=a"), 400, unknown('ids[]'), undef,
      'delete' ],
    [ 'ids%5B%5D=', req(DELETE => "$C?ids%5B%5D=a"), 400,
      unknown('ids%5B%5D'), undef, 'delete' ],
    [ 'id=', req(DELETE => "$C?id=a"), 400, unknown('id'), undef, 'delete' ],

    # method-override headers on otherwise valid requests
    [ 'X-HTTP-Method-Override on list',
      req(GET => $C, 'X-HTTP-Method-Override: DELETE'), 400, $OVERRIDE,
      undef, 'list' ],
    [ 'x-http-method on get', req(GET => "$C/abc", 'x-http-method: PATCH'),
      400, $OVERRIDE, undef, 'get' ],
    [ 'X-mEtHoD-oVeRrIdE on delete',
      req(DELETE => "$C?ids=a", 'X-mEtHoD-oVeRrIdE: GET'), 400, $OVERRIDE,
      undef, 'delete' ],
    [ 'X-HTTP-METHOD-OVERRIDE on create',
      json_req(POST => $C, $post, 'X-HTTP-METHOD-OVERRIDE: PATCH'), 400,
      $OVERRIDE, undef, 'create' ],
    [ 'X-Http-Method on update',
      json_req(PATCH => "$C/abc", $patch, 'X-Http-Method: DELETE'), 400,
      $OVERRIDE, undef, 'update' ],
    [ 'an empty X-HTTP-Method-Override',
      req(GET => $C, 'X-HTTP-Method-Override:'), 400, $OVERRIDE, undef,
      'list' ],
    [ 'the override before the Content-Type',
      req_body(PATCH => "$C/abc", $patch, 'Content-Type: text/plain',
               'X-Method-Override: GET'), 400, $OVERRIDE, undef, 'update' ],
    [ 'the query before the override',
      req(GET => "$C?x=1", 'X-HTTP-Method-Override: DELETE'), 400,
      unknown('x'), undef, 'list' ],

    # GET and DELETE must not carry a body
    [ 'list with a body', req_body(GET => $C, '{}'), 400, $HAS_BODY, undef,
      'list' ],
    [ 'get with a JSON body', json_req(GET => "$C/abc", $patch), 400,
      $HAS_BODY, undef, 'get' ],
    [ 'delete with a body', req_body(DELETE => "$C?ids=a", 'ids=b'), 400,
      $HAS_BODY, undef, 'delete' ],
    [ 'delete with a chunked body',
      "DELETE $C?ids=a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
      . "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400,
      $HAS_BODY, undef, 'delete' ],
    [ 'the override before the body',
      req_body(GET => $C, '{}', 'X-HTTP-Method: GET'), 400, $OVERRIDE, undef,
      'list' ],
);

my $n_refused = 0;

for my $case (@refused) {
    my ($what, $raw, $status, $body, $allow, $op, $location) = @$case;
    $op //= '';
    $location //= 'canonical';

    my $head = $raw =~ /^HEAD /;
    my $logged = $t->error_log_size;

    my $r = $t->raw($raw, head => $head);

    $t->is_refused($r, $status, $body, $what);

    if (length $body) {
        is_deeply(SGTest::json_body($r), JSON::PP->new->decode($body),
                  "$what: body as JSON");
    }

    is_deeply($r->{headers}{allow}, defined $allow ? [$allow] : undef,
              "$what: Allow header");
    is_deeply($r->{headers}{'x-operation'}, ["op=[$op]"],
              "$what: \$sendgrid_operation is '$op'");
    is($r->{headers}{'x-location'}[0], $location,
       "$what: answered in the $location location");

    my @new = $t->sendgrid_log_lines(since => $logged);
    ok(@new == 1 && $new[0]{obj}{source} eq 'gateway'
       && $new[0]{obj}{status} == $status,
       "$what: one normalized gateway line logged")
        or diag explain \@new;

    $n_refused++;
}

cmp_ok($n_refused, '>=', 60, "$n_refused refused requests in the catalogue");


# Requests nginx itself refuses before any location is chosen (so before
# the module runs): its own HTML answer, nothing upstream.  nginx 1.22:
#   405 for TRACE and CONNECT (ngx_http_process_request_header);
#   400 for a method not in upper case, an asterisk-form target, an
#       authority-form CONNECT, %00 or a raw NUL or bad %-escape in the
#       path, a path above the root, a space or control byte in the target,
#       userinfo in an absolute-form target, HTTP/1.1 without Host, two
#       Host headers;
#   414 for a request line longer than large_client_header_buffers;
#   505 for HTTP/2.0 in the request line.
# nginx 1.29.3 and newer parse CONNECT's target in authority form only
# (for CONNECT tunnels): an origin-form CONNECT is a 400, an authority-form
# one a 405 where no tunnel is configured.
my $connect_parsed = $t->nginx_version >= 1029003;
my @nginx_own = (
    [ 'TRACE on the collection', req(TRACE => $C), 405 ],
    [ 'TRACE on an id', req(TRACE => "$C/abc"), 405 ],
    [ 'CONNECT on the collection', req(CONNECT => $C),
      $connect_parsed ? 400 : 405 ],
    [ 'CONNECT on an id', req(CONNECT => "$C/abc"),
      $connect_parsed ? 400 : 405 ],
    [ 'CONNECT in authority form',
      "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost\r\n\r\n",
      $connect_parsed ? 405 : 400 ],
    [ 'lower-case get on the collection', req(get => $C), 400 ],
    [ 'lower-case get on an id', req(get => "$C/abc"), 400 ],
    [ 'mixed-case Get', req(Get => "$C/abc"), 400 ],
    [ 'lower-case delete', req(delete => "$C?ids=a"), 400 ],
    [ 'OPTIONS *', req(OPTIONS => '*'), 400 ],
    [ '%00 in an id', req(GET => "$C/abc%00"), 400 ],
    [ '%00 after the collection', req(GET => "$C%00"), 400 ],
    [ 'a raw NUL', req(GET => "$C/abc\x00"), 400 ],
    [ 'a bad %-escape', req(GET => "$C/%zz"), 400 ],
    [ 'a cut %-escape', req(GET => "$C/%"), 400 ],
    [ 'above the root', req(GET => "/..$C"), 400 ],
    [ 'a space in the path', req(GET => "$C/a b"), 400 ],
    [ 'a tab in the path', req(GET => "$C/a\tb"), 400 ],
    [ 'a control byte in the query', req(GET => "$C?a\x01b=1"), 400 ],
    [ 'userinfo in an absolute-form target',
      req11(GET => "http://user\@localhost$C"), 400 ],
    [ 'HTTP/1.1 without Host', "GET $C HTTP/1.1\r\n\r\n", 400 ],
    [ 'two Host headers',
      "GET $C HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
      400 ],
    [ 'a request line of 9000 bytes', req(GET => "$C/" . 'a' x 9000), 414 ],
    [ 'HTTP/2.0 in the request line', "GET $C HTTP/2.0\r\n\r\n", 505 ],
);

for my $case (@nginx_own) {
    my ($what, $raw, $status) = @$case;

    my $r = $t->raw($raw);

    is($r->{status}, $status, "nginx itself: $what: status $status");
    like($r->{headers}{'content-type'}[0] // '', qr{^text/html},
         "nginx itself: $what: nginx's own page");
    $t->nothing_upstream("nginx itself: $what");
}


# Canonical requests, including absolute-form targets, are forwarded with
# exactly the origin-form target.
my @forwarded = (
    [ 'absolute-form get', req11(GET => "http://localhost$C/abc"), 200,
      'GET', "$C/abc", 'get' ],
    [ 'absolute-form list naming another host',
      req11(GET => "https://evil.example$C"), 200, 'GET', $C, 'list' ],
    [ 'absolute-form delete with a port',
      req11(DELETE => "http://localhost:80$C?ids=a%2Cb,c&ids=d"), 204,
      'DELETE', "$C?ids=a%2Cb,c&ids=d", 'delete' ],
    [ 'get of a 128-character id', req(GET => "$C/$id128"), 200, 'GET',
      "$C/$id128", 'get' ],
    [ 'delete of a 128-character id', req(DELETE => "$C?ids=$id128"), 204,
      'DELETE', "$C?ids=$id128", 'delete' ],
    [ 'list with Content-Length: 0', req(GET => $C, 'Content-Length: 0'), 200,
      'GET', $C, 'list' ],
    [ 'list with two spaces after the target', "GET $C  HTTP/1.0\r\n\r\n",
      200, 'GET', $C, 'list' ],
    # a chunked body that turns out empty is no body
    [ 'list with an empty chunked body',
      "GET $C HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
      . "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, 'GET', $C,
      'list' ],
    [ 'delete with an empty chunked body, sent slowly',
      [ "DELETE $C?ids=a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n", "0\r\n", "\r\n" ], 204,
      'DELETE', "$C?ids=a", 'delete' ],
);

for my $case (@forwarded) {
    my ($what, $raw, $status, $method, $target, $op) = @$case;

    my $r = $t->raw($raw);

    is($r->{status}, $status, "$what: forwarded, the upstream's status");
    is($r->{headers}{'x-operation'}[0], "op=[$op]",
       "$what: \$sendgrid_operation");

    my $u = $t->forwarded_once('global', $what);
    is($u->{method}, $method, "$what: method upstream");
    is($u->{target}, $target, "$what: exact target upstream");
    is($u->{body}, '', "$what: no body upstream");
    is_deeply([ SGTest::header_values($u, 'Host') ],
              ['sendgrid_global'], "$what: Host is the upstream's");
    is_deeply([ SGTest::header_values($u, 'Authorization') ],
              ["Bearer $key"], "$what: the gateway's key");
}


# The edge server guards only its canonical location: what nginx's URI
# normalization moves out of it lands in "location / { return 404; }",
# never in the proxy.
for my $target ("$C/..%2f", "$C/../../../x", "$C/%2e%2e", '/v3/marketing') {
    my $r = $t->raw("GET $target HTTP/1.0\r\nHost: edge\r\n\r\n");

    is($r->{status}, 404, "edge $target: 404");
    is($r->{headers}{'x-location'}, undef, "edge $target: outside the location");
    $t->nothing_upstream("edge $target");
}

for my $target ("$C/../integrations", "$C/", "$C/abc;x") {
    my $r = $t->raw("GET $target HTTP/1.0\r\nHost: edge\r\n\r\n");

    is($r->{status}, 404, "edge $target: 404");
    is($r->{body}, $NOT_FOUND, "edge $target: the gateway's 404");
    $t->nothing_upstream("edge $target");
}


# A body that is itself a request is discarded with the refused request:
# on a kept-alive connection only the next real request is forwarded.
my $smuggled = "GET $C/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
my $after = "GET $C/after HTTP/1.1\r\nHost: localhost\r\nConnection: close"
          . "\r\n\r\n";

my @smuggling = (
    [ 'a body on GET', 400, "GET $C HTTP/1.1\r\nHost: localhost\r\n"
      . "Content-Length: " . length($smuggled) . "\r\n\r\n$smuggled" ],
    [ 'a body on a 404', 404, "POST $C/ HTTP/1.1\r\nHost: localhost\r\n"
      . "Content-Type: application/json\r\n"
      . "Content-Length: " . length($smuggled) . "\r\n\r\n$smuggled" ],
    [ 'a body on a 405', 405, "PUT $C HTTP/1.1\r\nHost: localhost\r\n"
      . "Content-Length: " . length($smuggled) . "\r\n\r\n$smuggled" ],
    [ 'a chunked body on DELETE', 400, "DELETE $C?ids=a HTTP/1.1\r\n"
      . "Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
      . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $smuggled, $smuggled) ],
    [ 'a body with an override header', 400, "PATCH $C/abc HTTP/1.1\r\n"
      . "Host: localhost\r\nX-HTTP-Method-Override: GET\r\n"
      . "Content-Type: application/json\r\n"
      . "Content-Length: " . length($smuggled) . "\r\n\r\n$smuggled" ],
);

for my $case (@smuggling) {
    my ($what, $status, $first) = @$case;

    my @r = $t->pipelined($first . $after);

    is_deeply([ map { $_->{status} } @r ], [$status, 200],
              "$what: the refusal, then the next request's answer");
    is_deeply([ map { $_->{target} } $t->upstream('global') ],
              ["$C/after"], "$what: only the next request upstream");
    is(scalar $t->upstream('eu'), 0, "$what: nothing to the EU upstream");
    ok(!grep({ index($_->{raw}, $key) >= 0 } @r), "$what: no key in answers");
}


# $sendgrid_operation in the access log: empty for 404 and 405, and the
# variables are safe to evaluate on requests nginx refused itself, before
# any location: they are not found there ("-"), as nothing was resolved.
my $ops = SGTest::slurp($t->dir . '/logs/ops.log');
like($ops, qr{^404 op=\[\] region=\[global\] "GET /v3/marketing/\./}m,
     'access log: a 404 has an empty $sendgrid_operation');
like($ops, qr{^405 op=\[\] region=\[global\] "PUT /v3/marketing/integrations }m,
     'access log: a 405 has an empty $sendgrid_operation');
like($ops, qr{^405 op=\[-\] region=\[-\] "TRACE .* subuser=\[-\] host=\[-\] error=\[-\]$}m,
     'access log: TRACE, refused by nginx, logged with an empty operation');
like($ops, qr{^400 op=\[-\] region=\[-\] "get .* error=\[-\]$}m,
     'access log: a lower-case method, refused by nginx, logged');

$t->done_testing;
