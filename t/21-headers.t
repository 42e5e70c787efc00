# What reaches the upstream besides the route: the gateway's key exactly
# once, no client credential or SendGrid control header as sent, every
# other client header unchanged and in order; the key in no variable, log
# or response; and a location with "sendgrid_integrations off" left alone.

use strict;
use warnings;

use Test::More;
use SGTest;

my $t = SGTest->new(log_level => 'info');   # error_log ... info

my $key = 'SG.header-test-parent.ABCDEFabcdef0123456789';
my $subkey = 'SG.header-test-subuser.ZYXWVUzyxwvu9876543210';
# the client's own credential, registered as a secret: once the module has
# run it must show nowhere; $other is for requests where nginx itself logs
# the header it refuses, or where the module is off
my $client_key = 'SG.client-own-key.0000000000';
my $other = 'client-credential-nginx-may-log';

$t->key_file('global.key', "$key\n");
$t->key_file('acme.key', "$subkey\n");
$t->secret($client_key);

my $conf = <<'CONF';
    log_format seen 'auth=[$http_authorization] obo=[$http_on_behalf_of] '
                    'acl=[$http_x_sg_elas_acl] subuser=[$sendgrid_subuser] '
                    'op=[$sendgrid_operation] error=[$sendgrid_error] '
                    '"$request"';
    access_log %%DIR%%/logs/seen.log seen;

    sendgrid_api_key_file %%DIR%%/global.key;
CONF
$t->start($conf
          . SGTest::gateway_server('localhost', '', default_server => 1)
          . SGTest::gateway_server('report', '', mode => 'report_only')
          . SGTest::gateway_server('subkey', 'sendgrid_subuser_region acme '
                                             . 'global %%DIR%%/acme.key;')
          . SGTest::gateway_server('off', '', mode => 'off',
                                   location => 'client_max_body_size 16;'));

my $C = '/v3/marketing/integrations';
my $post = '{"destination":"Segment","filters":{"email_events":["open","click"]},'
         . '"properties":{"write_key":"a123456","destination_region":"US"}}';
my $patch = '{"label":"new label"}';

# Sends a request with headers given as [name, value] pairs, in order.
sub send_raw {
    my ($method, $target, $headers, $body) = @_;
    my $req = "$method $target HTTP/1.0\r\n";
    $req .= "$_->[0]: $_->[1]\r\n" for @$headers;
    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    $req .= "\r\n";
    $req .= $body if defined $body;
    return $t->raw($req);
}

# Headers the proxy module sends first, whatever the client sent.
sub proxy_first {
    return $t->proxy_first(@_);
}


# 1. The client's Authorization, in any letter case, is replaced: the
#    upstream sees exactly the gateway's, once, after the client's other
#    headers, which pass unchanged and in order.
for my $name ('Authorization', 'authorization', 'AUTHORIZATION',
              'AuThOrIzAtIoN')
{
    for my $value ("Bearer $client_key", 'Basic dXNlcjpwYXNz', '') {
        my $what = "$name: '$value'";
        my @h = (['Host', 'localhost'], ['X-Before', 'one'], [$name, $value],
                 ['User-Agent', 'team-a/1.0'], ['X-After', 'two  spaced ']);

        my $r = send_raw(GET => "$C/abc", \@h);
        is($r->{status}, 200, "$what: forwarded");

        my $u = $t->forwarded_once('global', $what);
        # nginx trims the trailing spaces of a header value
        is_deeply($u->{headers},
                  [ proxy_first(), ['X-Before', 'one'],
                    ['User-Agent', 'team-a/1.0'], ['X-After', 'two  spaced'],
                    ['Authorization', "Bearer $key"] ],
                  "$what: every header upstream, the key once and last");
    }
}

# nginx 1.22 itself refuses a second Authorization header (any letter case)
# with 400 while reading the headers, before any location or module runs.
for my $pair (['Authorization', 'Authorization'],
              ['authorization', 'AUTHORIZATION'],
              ['AuThOrIzAtIoN', 'aUtHoRiZaTiOn'])
{
    my $what = "two headers $pair->[0] and $pair->[1]";
    my $r = send_raw(GET => $C, [ [$pair->[0], "Bearer $other"],
                                  [$pair->[1], 'Basic eDp5'] ]);
    is($r->{status}, 400, "$what: nginx answers 400 itself");
    like($r->{headers}{'content-type'}[0], qr{^text/html},
         "$what: with its own page");
    $t->nothing_upstream($what);
}

# Look-alike header names that nginx drops as invalid (a space before the
# colon, an underscore) or that are not credentials pass as nginx decides;
# none of them gives the client's credential to the upstream as
# Authorization.
{
    my $r = send_raw(GET => $C, [ ['Authorization ', "Bearer $other"],
                                  ['Author_ization', "Bearer $other"],
                                  ['X-Authorization', 'x-auth'] ]);
    is($r->{status}, 400, 'a space before the colon: nginx answers 400');
    $t->nothing_upstream('a space before the colon');

    $r = send_raw(GET => $C, [ ['Author_ization', "Bearer $other"],
                               ['X-Authorization', 'x-auth'] ]);
    is($r->{status}, 200, 'Author_ization and X-Authorization: forwarded');
    my $u = $t->forwarded_once('global', 'look-alike names');
    is_deeply($u->{headers},
              [ proxy_first(), ['X-Authorization', 'x-auth'],
                ['Authorization', "Bearer $key"] ],
              'look-alike names: the underscored header dropped by nginx, '
              . 'X-Authorization passed, the key once');
}


# 2. on-behalf-of and x-sg-elas-acl: with no subuser table, the client's
#    on-behalf-of is the subuser (sendgrid_subuser $http_on_behalf_of); with
#    the parent key the upstream sees exactly one on-behalf-of, the
#    gateway's; x-sg-elas-acl never.
my @control = (
    [ 'one on-behalf-of', [ ['on-behalf-of', 'acme-sub'] ], 'acme-sub' ],
    [ 'On-Behalf-Of', [ ['On-Behalf-Of', 'Sub_1'] ], 'Sub_1' ],
    [ 'ON-BEHALF-OF with an acl',
      [ ['ON-BEHALF-OF', 'team-b'], ['X-SG-ELAS-ACL', '{"scopes":["*"]}'] ],
      'team-b' ],
    [ 'several x-sg-elas-acl, in any case',
      [ ['x-sg-elas-acl', 'one'], ['on-behalf-of', 'first'],
        ['X-Sg-Elas-Acl', 'two'], ['X-SG-ELAS-ACL', 'three'] ],
      'first' ],
    [ 'only x-sg-elas-acl', [ ['x-sg-elas-acl', 'acl-only'] ], undef ],
    [ 'an empty on-behalf-of', [ ['on-behalf-of', ''] ], undef ],
    [ 'a subuser with a space', [ ['on-behalf-of', 'a b'] ], 'a b' ],
);

for my $case (@control) {
    my ($what, $control, $subuser) = @$case;

    my @h = (['Host', 'localhost'], ['X-First', '1'], @$control,
             ['Authorization', "Bearer $client_key"], ['X-Last', '2']);

    my $r = send_raw(GET => $C, \@h);
    is($r->{status}, 200, "$what: forwarded");

    my $u = $t->forwarded_once('global', $what);
    my @want = (proxy_first(), ['X-First', '1'], ['X-Last', '2'],
                ['Authorization', "Bearer $key"]);
    push @want, ['on-behalf-of', $subuser] if defined $subuser;

    is_deeply($u->{headers}, \@want,
              "$what: on-behalf-of " . ($subuser // 'none')
              . ', no x-sg-elas-acl, the key once');
}

# More than one on-behalf-of, in any spelling, is refused: which of them
# nginx would take as $http_on_behalf_of (the first on nginx 1.22, all
# joined with ", " from 1.23 on) must never decide the key.
for my $case ([ 'two on-behalf-of', ['on-behalf-of', 'first'],
                ['On-Behalf-Of', 'second'] ],
              [ 'the same twice', ['on-behalf-of', 'a'],
                ['on-behalf-of', 'a'] ],
              [ 'one empty', ['on-behalf-of', 'a'], ['ON-BEHALF-OF', ''] ],
              [ 'three in any case', ['x-sg-elas-acl', 'one'],
                ['on-behalf-of', 'first'], ['On-Behalf-Of', 'second'],
                ['oN-bEhAlF-oF', 'third'] ])
{
    my ($what, @control) = @$case;
    my $r = send_raw(GET => $C, [ ['Host', 'localhost'], @control ]);
    $t->is_refused($r, 400, '{"errors":[{"message":"on-behalf-of must be '
                            . 'sent at most once","field":null}]}', $what);
}

# a subuser that is no valid header value is refused, not forwarded
{
    my $r = send_raw(GET => $C, [ ['on-behalf-of', "caf\xc3\xa9"] ]);
    $t->is_refused($r, 400, '{"errors":[{"message":"the subuser is not a '
                            . 'valid header value","field":null}]}',
                   'a non-ASCII subuser');
}

# with a subuser key the upstream sees that key and no on-behalf-of at all
for my $case ([ 'the subuser', [ ['on-behalf-of', 'acme'] ] ],
              [ 'the subuser, with an acl',
                [ ['on-behalf-of', 'acme'], ['X-SG-ELAS-ACL', 'x'] ] ])
{
    my ($what, $control) = @$case;
    my $r = send_raw(GET => $C, [ ['Host', 'subkey'], ['X-A', 'a'], @$control,
                                  ['authorization', "Bearer $client_key"] ]);
    is($r->{status}, 200, "subuser key, $what: forwarded");

    my $u = $t->forwarded_once('global', "subuser key, $what");
    is_deeply($u->{headers},
              [ proxy_first(), ['X-A', 'a'], ['Authorization', "Bearer $subkey"] ],
              "subuser key, $what: the subuser's key, no on-behalf-of");
}

# an unlisted subuser on the same server: the parent key and on-behalf-of
{
    my $r = send_raw(GET => $C, [ ['Host', 'subkey'],
                                  ['on-behalf-of', 'other'] ]);
    is($r->{status}, 200, 'unlisted subuser: forwarded');
    my $u = $t->forwarded_once('global', 'unlisted subuser');
    is_deeply($u->{headers},
              [ proxy_first(), ['Authorization', "Bearer $key"],
                ['on-behalf-of', 'other'] ],
              'unlisted subuser: the parent key and its on-behalf-of');
}


# 3. Requests with a body take another path through the module (the body
#    is read, then the request goes on): the same headers reach the
#    upstream, and the body byte for byte.
for my $case ([ POST => $C, $post, 'create' ],
              [ PATCH => "$C/abc", $patch, 'update' ])
{
    my ($method, $target, $body, $op) = @$case;

    my @h = (['Host', 'localhost'], ['AUTHORIZATION', "Bearer $client_key"],
             ['Content-Type', 'application/json'],
             ['On-Behalf-Of', 'body-sub'], ['X-Sg-Elas-Acl', 'acl'],
             ['X-Request-Id', "req-$op"]);

    my $r = send_raw($method, $target, \@h, $body);
    ok($r->{status} == 200 || $r->{status} == 201, "$op: forwarded");

    my $u = $t->forwarded_once('global', $op);
    is($u->{body}, $body, "$op: body byte for byte");
    is_deeply($u->{headers},
              [ proxy_first($body), ['Content-Type', 'application/json'],
                ['X-Request-Id', "req-$op"], ['Authorization', "Bearer $key"],
                ['on-behalf-of', 'body-sub'] ],
              "$op: every header upstream");
}

# a body sent chunked goes upstream with its length
{
    my $req = "PATCH $C/abc HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\nAuthorization: Bearer $client_key\r\n"
            . "Content-Type: application/json\r\n"
            . "Transfer-Encoding: chunked\r\n\r\n";
    $req .= sprintf("%x\r\n%s\r\n", 1, $_) for split //, $patch;
    $req .= "0\r\n\r\n";

    my $r = $t->raw($req);
    is($r->{status}, 200, 'chunked update: forwarded');
    my $u = $t->forwarded_once('global', 'chunked update');
    is($u->{body}, $patch, 'chunked update: body');
    is_deeply([ SGTest::header_values($u, 'Authorization') ], ["Bearer $key"],
              'chunked update: the key once');
}


# 4. report_only relaxes body rules, never the headers: a wrong
#    Content-Type is forwarded, with the key in place of the client's.
{
    my $r = send_raw(POST => $C, [ ['Host', 'report'],
                                   ['Authorization', "Bearer $client_key"],
                                   ['Content-Type', 'text/plain'],
                                   ['on-behalf-of', 'rep'],
                                   ['x-sg-elas-acl', 'acl'] ], $post);
    is($r->{status}, 201, 'report_only: forwarded');
    my $u = $t->forwarded_once('global', 'report_only');
    is_deeply($u->{headers},
              [ proxy_first($post), ['Content-Type', 'text/plain'],
                ['Authorization', "Bearer $key"], ['on-behalf-of', 'rep'] ],
              'report_only: the key, the gateway\'s on-behalf-of, no acl');

    $r = send_raw(GET => $C, [ ['Host', 'report'],
                               ['X-HTTP-Method-Override', 'DELETE'] ]);
    is($r->{status}, 400, 'report_only: an override header still refused');
    $t->nothing_upstream('report_only override');
}


# 5. Keep-alive: each request on a connection is judged on its own headers.
{
    my @r = $t->pipelined(
        "GET $C/one HTTP/1.1\r\nHost: localhost\r\non-behalf-of: first\r\n"
        . "Authorization: Bearer $client_key\r\n\r\n"
        . "GET $C/two HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "\r\n");
    my $answers = join '', map { $_->{raw} } @r;

    is_deeply([ map { "$_->{version} $_->{status}" } @r ],
              ['HTTP/1.1 200', 'HTTP/1.1 200'], 'keep-alive: two answers');
    unlike($answers, qr/\Q$key\E/, 'keep-alive: no key in the answers');

    my @seen = $t->upstream('global');
    is_deeply([ map { [ $_->{target}, [ SGTest::header_values($_,
                                              'on-behalf-of') ],
                        [ SGTest::header_values($_, 'Authorization') ] ] }
                @seen ],
              [ [ "$C/one", ['first'], ["Bearer $key"] ],
                [ "$C/two", [], ["Bearer $key"] ] ],
              'keep-alive: the subuser of the first request only');
}


# 6. sendgrid_integrations off: the module stays out of the way, though a
#    key is configured at the http level.
{
    my @h = (['Host', 'off'], ['Authorization', "Bearer $other"],
             ['on-behalf-of', 'off-sub'], ['X-SG-ELAS-ACL', 'acl'],
             ['X-HTTP-Method-Override', 'GET']);

    my $r = send_raw(PUT => "$C/", \@h);
    is($r->{status}, 200, 'off: a non-canonical PUT is forwarded');
    my $u = $t->forwarded_once('global', 'off');
    is("$u->{method} $u->{target}", "PUT $C/", 'off: method and target as sent');
    is_deeply($u->{headers},
              [ proxy_first(), ['Authorization', "Bearer $other"],
                ['on-behalf-of', 'off-sub'], ['X-SG-ELAS-ACL', 'acl'],
                ['X-HTTP-Method-Override', 'GET'] ],
              'off: the client\'s headers exactly, no key injected');

    my $logged = $t->error_log_size;

    $t->upstream_response('global', status => 404,
                          headers => [['Content-Type', 'text/plain']],
                          body => "no such thing\n");
    $r = send_raw(GET => "$C/abc", [ ['Host', 'off'] ]);
    $t->upstream_response('global');
    is($r->{status}, 404, 'off: the upstream error passes');
    is($r->{body}, "no such thing\n", 'off: its body unchanged');
    is($r->{headers}{'content-type'}[0], 'text/plain', 'off: its type too');
    $t->forwarded_once('global', 'off, upstream error');

    $r = send_raw(POST => $C, [ ['Host', 'off'],
                                ['Content-Type', 'application/json'] ], $post);
    is($r->{status}, 413, 'off: nginx\'s 413');
    like($r->{headers}{'content-type'}[0], qr{^text/html},
         'off: nginx\'s own page, not JSON');
    $t->nothing_upstream('off, 413');

    is(scalar(() = $t->sendgrid_log_lines(since => $logged, all => 1)), 0,
       'off: no line from the module logged');
}


# 7. After the requests: $http_authorization (and the other variables) in
#    the access log never yield the key, and neither does any log line.
$t->stop;

my $seen = SGTest::slurp($t->dir . '/logs/seen.log');
my @seen_lines = split /\n/, $seen;
ok(@seen_lines >= 35, 'access log written (' . scalar(@seen_lines) . ' lines)');

for my $k ($key, $subkey) {
    is(index($seen, $k), -1, 'access log: no configured key');
    is(index($t->error_log, $k), -1, 'error log at info: no configured key');
}

like($seen, qr{^auth=\[-\] obo=\[acme-sub\] acl=\[-\] subuser=\[acme-sub\] }m,
     'access log: $http_authorization is empty once the module ran');
unlike($seen, qr{auth=\[Bearer SG\.header}, 'access log: no injected value');

$t->done_testing;
