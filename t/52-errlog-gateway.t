# Error lines of the gateway's own answers and of nginx's error pages on
# the module's routes; sendgrid_error_log levels and off; $sendgrid_error
# in access logs; the filters idle where sendgrid_integrations is off;
# inspection never delays the client, and successful answers are left
# alone.

use strict;
use warnings;

use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use SGTest qw(create_body is_sendgrid_error);

my $t = SGTest->new;
$t->key_file('global.key', "SG.errlog-gw-global.0123456789abcdef\n");
$t->key_file('eu.key', "SG.errlog-gw-eu.fedcba9876543210\n");

# nothing listens there: connections are refused
my $dead = SGTest::dead_port();

(my $conf = <<'CONF') =~ s/%%DEAD%%/$dead/g;
    %%ERROR_VARIABLE_LOGS%%

    upstream sendgrid_down { server 127.0.0.1:%%DEAD%%; }

    limit_req_zone $http_x_limit zone=errlog_one:1m rate=1r/m;

    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_subuser_region ~^eu- eu;
CONF

$conf .= SGTest::gateway_server(@$_) for
    [ 'localhost', 'sendgrid_api_key_file %%DIR%%/eu.key eu;' ],
    [ 'nokey.test' ],
    [ 'small.test', 'client_max_body_size 16;' ],
    [ 'down.test', 'sendgrid_upstream_host global sendgrid_down;' ],
    [ 'slow.test', 'proxy_read_timeout 300ms;' ],
    [ 'warn.test', 'sendgrid_error_log warn;' ],
    [ 'quiet.test', 'sendgrid_error_log off;' ],
    [ 'stream.test', 'proxy_buffering off;' ],
    [ 'policy.test', '', location => <<'LOC' ];
        if ($http_x_deny) {
            return 403;
        }
        if ($http_x_deny_text) {
            return 403 "denied by policy\n";
        }
        limit_req zone=errlog_one nodelay;
LOC

$t->start($conf . <<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name off.test;

        location /v3/marketing/integrations {
            sendgrid_integrations off;
            proxy_pass http://sendgrid_global;
        }

        location /v3/marketing/integrations/ {
            sendgrid_integrations off;
            proxy_pass http://sendgrid_down;
        }
    }
CONF


# -- helpers ----------------------------------------------------------------

my $J = JSON::PP->new->utf8->canonical;

# the write_key of the requests, which no log may show
my $write_key = 'wk_errlog_7c1d2e';
$t->secret($write_key);

my $create = create_body(write_key => $write_key);
my $coll = '/v3/marketing/integrations';
my $item = '/v3/marketing/integrations/5a1234';


# -- the gateway's own answers ---------------------------------------------

my @gateway = (
    [ '404 trailing slash', 404, undef, [ GET => "$coll/" ] ],
    [ '404 dot segment, subuser', 404, undef,
      [ GET => "$coll/../integrations", subuser => 'acme' ] ],
    [ '405 on the collection', 405, undef, [ PUT => $coll ] ],
    [ '405 on an item, EU subuser', 405, undef,
      [ DELETE => $item, subuser => 'eu-acme' ] ],
    [ '400 unknown query parameter', 400, 'list', [ GET => "$coll?limit=10" ] ],
    [ '400 empty id', 400, 'delete', [ DELETE => "$coll?ids=a,,b" ] ],
    [ '400 method override header', 400, 'get',
      [ GET => $item, headers => [ 'X-HTTP-Method-Override' => 'DELETE' ] ] ],
    [ '415 text/plain body', 415, 'create',
      [ POST => $coll, body => $create, no_type => 1,
        headers => [ 'Content-Type' => 'text/plain' ] ] ],
    [ '400 empty body', 400, 'create', [ POST => $coll, body => '' ] ],
    [ '400 schema failure, EU subuser', 400, 'create',
      [ POST => $coll, body => '{"destination":"Segment"}', subuser => 'eu-team' ] ],
    [ '400 body on a GET', 400, 'list', [ GET => $coll, body => '{}' ] ],
    [ '500 no key for the region', 500, 'list',
      [ GET => $coll, host => 'nokey.test', subuser => 'eu-team' ] ],
);

for my $g (@gateway) {
    my ($name, $status, $op, $req) = @$g;
    my ($method, $target, %opt) = @$req;
    my $x = $t->request_and_logs($method, $target, %opt);
    my $errors = is_sendgrid_error($x->{r}, $status, $name);
    my $subuser = $opt{subuser};
    $t->is_error_line($name, $x, source => 'gateway', status => $status,
                      operation => $op,
                      region => (defined $subuser && $subuser =~ /^eu-/)
                                ? 'eu' : 'global',
                      subuser => $subuser, errors => $errors);
    $t->nothing_upstream($name);
}


# -- nginx's own error pages -----------------------------------------------

{
    my $x = $t->request_and_logs(POST => $coll, body => $create,
                                 host => 'small.test');
    my $errors = is_sendgrid_error($x->{r}, 413, '413 Content-Length');
    $t->is_error_line('413 Content-Length', $x, source => 'gateway',
                      status => 413, operation => 'create',
                      region => 'global', subuser => undef,
                      errors => $errors);

    $x = $t->request_and_logs(POST => $coll, body => $create,
                              host => 'small.test', chunked => 1,
                              http => '1.1', subuser => 'acme');
    $errors = is_sendgrid_error($x->{r}, 413, '413 chunked');
    $t->is_error_line('413 chunked', $x, source => 'gateway', status => 413,
                      operation => 'create', region => 'global',
                      subuser => 'acme', errors => $errors);
    $t->nothing_upstream('413');

    $x = $t->request_and_logs(GET => $coll, host => 'down.test');
    $errors = is_sendgrid_error($x->{r}, 502, '502 refused');
    $t->is_error_line('502 refused', $x, source => 'gateway', status => 502,
                      operation => 'list', region => 'global',
                      subuser => undef, errors => $errors);

    $t->upstream_response('global', status => 200, headers => [ [ 'Content-Type', 'application/json' ] ],
                          body => '{"result":[]}', delay_ms => 1500);
    $x = $t->request_and_logs(GET => $item, host => 'slow.test');
    $t->upstream_response('global');
    $errors = is_sendgrid_error($x->{r}, 504, '504 timed out');
    $t->is_error_line('504 timed out', $x, source => 'gateway',
                      status => 504, operation => 'get', region => 'global',
                      subuser => undef, errors => $errors);
    $t->upstream('global');
}


# -- answers the location makes before the gateway's handler ---------------
# (return, limit_req): the gateway's, whatever their body; nothing goes
# upstream, and the line names the location's subuser and region

{
    my $x = $t->request_and_logs(GET => $coll, host => 'policy.test',
                                 headers => [ 'X-Deny' => 1 ],
                                 subuser => 'eu-p');
    my $errors = is_sendgrid_error($x->{r}, 403, 'return 403');
    $t->is_error_line('return 403', $x, source => 'gateway', status => 403,
                      operation => 'list', region => 'eu', subuser => 'eu-p',
                      errors => $errors);

    $x = $t->request_and_logs(GET => $item, host => 'policy.test',
                              headers => [ 'X-Deny-Text' => 1 ]);
    is($x->{r}{status}, 403, 'return 403 with a text: status');
    is($x->{r}{body}, "denied by policy\n", 'return 403 with a text: its text');
    $t->is_error_line('return 403 with a text', $x, source => 'gateway',
                      status => 403, operation => 'get', region => 'global',
                      subuser => undef,
                      errors => [ [ undef, 'denied by policy' ] ]);

    my @h = ('X-Limit' => 'one');
    $x = $t->request_and_logs(GET => $item, host => 'policy.test',
                              headers => \@h);
    is($x->{r}{status}, 200, 'limit_req: the first request passes');
    $t->upstream('global');
    $x = $t->request_and_logs(GET => $item, host => 'policy.test',
                              headers => \@h);
    $errors = is_sendgrid_error($x->{r}, 503, 'limit_req');
    $t->is_error_line('limit_req', $x, source => 'gateway', status => 503,
                      operation => 'get', region => 'global',
                      subuser => undef, errors => $errors);
    $t->nothing_upstream('policy answers');
}


# -- sendgrid_error_log ------------------------------------------------------

my $sg400 = '{"errors":[{"field":"label","message":"label is too long"}]}';
my $json = [ 'Content-Type', 'application/json' ];

for my $level ([ 'warn.test', 'warn' ], [ 'localhost', 'error' ]) {
    my ($host, $want) = @$level;

    $t->upstream_response('global', status => 400, headers => [ $json ],
                          body => $sg400);
    my $x = $t->request_and_logs(PATCH => $item, body => '{"label":"l"}',
                                 host => $host);
    $t->upstream_response('global');
    $t->upstream('global');
    $t->is_error_line("sendgrid_error_log $want: upstream 400", $x,
                      level => $want, source => 'upstream', status => 400,
                      operation => 'update', region => 'global',
                      subuser => undef,
                      errors => [ [ 'label', 'label is too long' ] ]);

    $x = $t->request_and_logs(GET => "$coll/", host => $host);
    $t->is_error_line("sendgrid_error_log $want: gateway 404", $x,
                      level => $want, source => 'gateway', status => 404,
                      operation => undef, region => 'global',
                      subuser => undef,
                      errors => is_sendgrid_error($x->{r}, 404, "$want 404"));
}

{
    $t->upstream_response('global', status => 400, headers => [ $json ],
                          body => $sg400);
    my $x = $t->request_and_logs(PATCH => $item, body => '{"label":"l"}',
                                 host => 'quiet.test');
    $t->upstream_response('global');
    $t->upstream('global');

    is(scalar @{$x->{lines}}, 0, 'sendgrid_error_log off: upstream 400 not logged')
        or diag(join "\n", map { $_->{line} } @{$x->{lines}});
    is($x->{var}{plain}, $x->{var}{json}, 'sendgrid_error_log off: both access logs agree');
    is_deeply(eval { $J->decode($x->{var}{json} // '') },
              SGTest::normalized_error(source => 'upstream', status => 400,
                  operation => 'update', region => 'global', subuser => undef,
                  errors => [ [ 'label', 'label is too long' ] ]),
              'sendgrid_error_log off: $sendgrid_error still set')
        or diag($x->{var}{json});

    $x = $t->request_and_logs(GET => "$coll/", host => 'quiet.test',
                              subuser => 'acme');
    is(scalar @{$x->{lines}}, 0, 'sendgrid_error_log off: gateway 404 not logged');
    my $errors = is_sendgrid_error($x->{r}, 404, 'quiet 404');
    is_deeply(eval { $J->decode($x->{var}{json} // '') },
              SGTest::normalized_error(source => 'gateway', status => 404,
                  operation => undef, region => 'global', subuser => 'acme',
                  errors => $errors),
              'sendgrid_error_log off: $sendgrid_error of a gateway 404')
        or diag($x->{var}{json});
}


# -- successful answers are left alone -------------------------------------

for my $ok ([ 200, 'list', GET => $coll ],
            [ 201, 'create', POST => $coll, $create ],
            [ 204, 'delete', DELETE => "$coll?ids=5a1234" ],
            [ 302, 'get', GET => $item ],
            [ 399, 'get', GET => $item ]) {
    my ($status, $op, $method, $target, $body) = @$ok;
    my $answer = $status == 204 ? '' : qq{{"result":"status $status"}};

    $t->upstream_response('global', status => $status, headers => [ $json ],
                          body => $answer);
    my $x = $t->request_and_logs($method, $target, body => $body);
    $t->upstream_response('global');
    is(scalar $t->upstream('global'), 1, "$status $op: forwarded");

    is($x->{r}{status}, $status, "$status $op: status relayed");
    ok($x->{r}{body} eq $answer, "$status $op: body untouched");
    is(scalar @{$x->{lines}}, 0, "$status $op: nothing logged");
    is($x->{var}{json}, '', "$status $op: \$sendgrid_error empty (escape=json)");
    is($x->{var}{plain}, '', "$status $op: \$sendgrid_error empty (default escaping)");
}


# -- sendgrid_integrations off: the filters stay idle ----------------------

{
    $t->upstream_response('global', status => 400, headers => [ $json ],
                          body => $sg400);
    my $x = $t->request_and_logs(GET => $coll, host => 'off.test');
    $t->upstream_response('global');
    is(scalar $t->upstream('global'), 1, 'off: forwarded');
    is($x->{r}{status}, 400, 'off: upstream status relayed');
    ok($x->{r}{body} eq $sg400, 'off: upstream body relayed');
    is(scalar @{$x->{lines}}, 0, 'off: upstream 400 not logged by the module')
        or diag(join "\n", map { $_->{line} } @{$x->{lines}});
    is($x->{var}{json}, '', 'off: $sendgrid_error empty (escape=json)');
    like($x->{var}{plain}, qr/^-?$/, 'off: $sendgrid_error empty (default escaping)');

    $x = $t->request_and_logs(GET => "$coll/", host => 'off.test');
    is($x->{r}{status}, 502, "off: nginx's own 502");
    like($x->{r}{headers}{'content-type'}[0], qr{^text/html},
         "off: nginx's own error page left as it is");
    like($x->{r}{body}, qr{<title>502 Bad Gateway</title>},
         "off: nginx's own error page body");
    is(scalar @{$x->{lines}}, 0, "off: nginx's 502 not logged by the module")
        or diag(join "\n", map { $_->{line} } @{$x->{lines}});
    is($x->{var}{json}, '', 'off: $sendgrid_error of the 502 empty');
}


# -- inspection never delays the client ------------------------------------

# Sends a GET and reads the answer as it comes; returns the time the first
# body byte came and the time the answer ended.  abort: close the
# connection at the first body byte.
sub timed_get {
    my ($host, $id, %opt) = @_;
    my $s = $t->connect;
    my $start = time;
    SGTest::syswrite_all($s, "GET $coll HTTP/1.0\r\nHost: $host\r\n"
                             . "X-Test-Id: $id\r\n\r\n");
    my ($buf, $first) = ('', undef);
    local $SIG{ALRM} = sub { die "timed out reading\n" };
    alarm 20;
    while (sysread($s, $buf, 65536, length $buf)) {
        if (!defined $first && $buf =~ /\r\n\r\n./s) {
            $first = time - $start;
            last if $opt{abort};
        }
    }
    alarm 0;
    my $end = time - $start;
    close $s;
    $t->seen_response($buf);
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    return ($first, $end, $head, $body);
}

my $slow_body = '{"errors":[{"field":"label","message":"' . ('s' x 1500) . '"}]}';

for my $host ('stream.test', 'localhost') {
    $t->upstream_response('global', status => 400, headers => [ $json ],
                          body => $slow_body, chunked => 1, chunk_size => 1,
                          chunk_delay => 1);
    my $id = $t->next_test_id;
    my $offset = $t->error_log_size;
    my ($first, $end, $head, $body) = timed_get($host, $id);
    $t->upstream_response('global');
    $t->upstream('global');

    note(sprintf "via %s: first body byte at %.3fs, end at %.3fs",
                 $host, $first // -1, $end);
    ok($body eq $slow_body, "slow error body via $host: relayed whole");
    ok(defined $first && $first < $end / 2,
       "slow error body via $host: first byte long before the end")
        or diag(sprintf 'first byte at %.3fs, end at %.3fs', $first // -1, $end);

    my $x = $t->logs_of($id, $offset);
    $t->is_error_line("slow error body via $host", $x,
                      source => 'upstream', status => 400,
                      operation => 'list', region => 'global',
                      subuser => undef, truncated => 1,
                      errors => [ [ 'label', ('s' x 253) . "\x{2026}" ] ]);
}

# the client leaves while the error body is still coming
{
    $t->upstream_response('global', status => 400, headers => [ $json ],
                          body => $slow_body, chunked => 1, chunk_size => 1,
                          chunk_delay => 1);
    my $id = $t->next_test_id;
    my $offset = $t->error_log_size;
    my ($first) = timed_get('stream.test', $id, abort => 1);
    ok(defined $first, 'aborted client: got the start of the body');
    my $x = $t->logs_of($id, $offset);
    $t->upstream_response('global');
    $t->upstream('global');

    my @lines = grep { $_->{obj} } @{$x->{lines}};
    is(scalar @lines, 1, 'aborted client: the upstream error is still logged once')
        or diag(join "\n", map { $_->{line} } @{$x->{lines}});
    if (@lines) {
        my $o = $lines[0]{obj};
        is_deeply([ @$o{qw(source status operation)} ], [ 'upstream', 400, 'list' ],
                  'aborted client: source, status, operation');
        ok($o->{truncated}, 'aborted client: marked truncated');
        is($x->{var}{json}, $lines[0]{json}, 'aborted client: $sendgrid_error is the line');
    }
}

$t->done_testing;
