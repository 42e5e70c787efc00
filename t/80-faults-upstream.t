# Upstream faults: the upstream refuses the connection, times out before
# its headers, resets or closes before its answer or in the middle of it,
# cuts a chunked body short, or sends headers nginx cannot take.  Where
# nginx cannot relay an answer, the client gets the gateway's JSON (502 or
# 504) and one normalized line; where the answer had started, the client
# keeps what was relayed and the connection is closed, never completed as
# if whole; a request is never sent twice; the worker gives its memory
# back.

use strict;
use warnings;

use Test::More;
use SGTest qw(chunked create_body fold is_bytes is_gateway_error);

my $t = SGTest->new;
$t->key_file('global.key', "SG.faults-up-global.0123456789abcdef\n");

# nothing listens there: connections are refused
my $dead = SGTest::dead_port();

(my $conf = <<'CONF') =~ s/%%DEAD%%/$dead/g;
    %%ERROR_VARIABLE_LOGS%%

    upstream sendgrid_down { server 127.0.0.1:%%DEAD%%; }

    sendgrid_api_key_file %%DIR%%/global.key;
CONF

$t->start($conf
          . SGTest::gateway_server('localhost', 'proxy_read_timeout 5s;')
          . SGTest::gateway_server('down.test',
                                   'sendgrid_upstream_host global sendgrid_down;')
          . SGTest::gateway_server('slow.test', 'proxy_read_timeout 500ms;')
          . SGTest::gateway_server('stream.test', 'proxy_buffering off;'));

my $write_key = 'wk_faults_up_3e1f';
$t->secret($write_key);

my $coll = '/v3/marketing/integrations';
my $item = "$coll/5a1234";
my $create = create_body(write_key => $write_key);
my $json = [ 'Content-Type', 'application/json' ];

my $unreachable = 'the SendGrid API could not be reached';
my $too_slow = 'the SendGrid API did not answer in time';


# -- helpers ----------------------------------------------------------------

# One request whose answer nginx could not relay: the gateway's JSON, one
# normalized line, nginx's own line saying why, and what the mock got
# (want_upstream => 0 or 1 requests, the body byte for byte).
sub gateway_answers {
    my ($name, %c) = @_;
    my ($method, $target, $body) = @{$c{request}};

    my $x = $t->request_and_logs($method, $target, body => $body,
                                 host => $c{host});
    my @seen = $t->upstream('global');

    is_gateway_error($x->{r}, $c{status}, $c{message}, $name);
    $t->is_error_line($name, $x, source => 'gateway', status => $c{status},
                      operation => $c{op}, region => 'global',
                      subuser => undef, errors => [ [ undef, $c{message} ] ]);

    my @why = $t->nginx_log_lines('error', $x->{offset});
    is(scalar(grep { $_ =~ $c{nginx} } @why), 1, "$name: nginx says why")
        or diag(join "\n", @why);

    is(scalar @seen, $c{upstream}, "$name: $c{upstream} request(s) upstream");
    is_deeply([ map { $_->{body} } @seen ], [ ($body // '') x $c{upstream} ],
              "$name: the body went up as sent") if $c{upstream};
}

my %requests = (
    list   => [ GET => $coll ],
    create => [ POST => $coll, $create ],
    update => [ PATCH => $item, '{"label":"renamed"}' ],
);


# -- the upstream cannot be reached, or does not answer -----------------------

for my $op ('list', 'create') {
    gateway_answers("refused, $op", request => $requests{$op}, op => $op,
                    host => 'down.test', status => 502,
                    message => $unreachable, upstream => 0,
                    nginx => qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream/);
}

for my $op ('list', 'create') {
    $t->upstream_response('global', status => 200, headers => [ $json ],
                          body => '{"result":[]}', delay_ms => 1500);
    gateway_answers("timed out before headers, $op", request => $requests{$op},
                    op => $op, host => 'slow.test', status => 504,
                    message => $too_slow, upstream => 1,
                    nginx => qr/upstream timed out \(110: Connection timed out\) while reading response header from upstream/);
    $t->upstream_response('global');
}

my @before_headers = (
    [ 'reset before the answer', { raw => '', end => 'reset' },
      qr/recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream/ ],
    [ 'closed before the answer', { raw => '', end => 'close' },
      qr/upstream prematurely closed connection while reading response header from upstream/ ],
    [ 'reset inside the status line', { raw => 'HTTP/1.1 20', end => 'reset',
                                        hold_ms => 100 },
      qr/recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream/ ],
    [ 'closed inside the headers',
      { raw => "HTTP/1.1 200 OK\r\nContent-Type: appl", end => 'close' },
      qr/upstream prematurely closed connection while reading response header from upstream/ ],
);

for my $f (@before_headers) {
    my ($what, $spec, $nginx) = @$f;
    for my $op ('list', 'create') {
        $t->upstream_response('global', %$spec);
        gateway_answers("$what, $op", request => $requests{$op}, op => $op,
                        status => 502, message => $unreachable,
                        upstream => 1, nginx => $nginx);
        $t->upstream_response('global');
    }
}


# -- headers nginx does not take ----------------------------------------------

# (nginx 1.23 and later also refuse an invalid Content-Length, both
# Content-Length and Transfer-Encoding, and an unknown Transfer-Encoding;
# nginx 1.22 relays those answers as it reads them)
my @malformed = (
    [ 'a NUL byte in a header value',
      "HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\n{}",
      qr/upstream sent invalid header: "X-Bad: a\\x00\.\.\." while reading response header from upstream/ ],
    [ 'a NUL byte in a header name',
      "HTTP/1.1 400 Bad Request\r\nX-B\0ad: v\r\nContent-Length: 2\r\n\r\n{}",
      qr/upstream sent invalid header: "X-B\\x00\.\.\." while reading response header from upstream/ ],
    [ 'headers larger than proxy_buffer_size',
      "HTTP/1.1 400 Bad Request\r\nX-Big: " . ('b' x 8192) . "\r\n\r\n",
      qr/upstream sent too big header while reading response header from upstream/ ],
);

for my $m (@malformed) {
    my ($what, $raw, $nginx) = @$m;
    $t->upstream_response('global', raw => $raw, end => 'close');
    gateway_answers($what, request => $requests{update}, op => 'update',
                    status => 502, message => $unreachable, upstream => 1,
                    nginx => $nginx);
    $t->upstream_response('global');
}


# -- the answer breaks off in the middle ------------------------------------

my $sg400 = '{"errors":[{"field":"label","message":"label is too long, at most 100 characters"}]}';
my $ok_body = '{"result":[' . join(',', map { qq{{"id":"$_"}} } 1 .. 200) . ']}';

# Sends the request with the answer cut after `keep` bytes of its body
# (chunked: of the chunked framing), then the end given; checks that the
# client got the head and exactly those body bytes, that the connection was
# closed without completing the answer, and the lines logged.
sub broken_answer {
    my ($name, %c) = @_;
    my ($method, $target, $body) = @{$requests{$c{op}}};

    my $head = "HTTP/1.1 $c{status} Mock\r\nContent-Type: application/json\r\n"
             . "Connection: close\r\n"
             . ($c{chunked} ? "Transfer-Encoding: chunked\r\n"
                            : "Content-Length: " . length($c{body}) . "\r\n")
             . "\r\n";
    my $framed = $c{chunked} ? chunked($c{body}, 16) : $c{body};

    $t->upstream_response('global', status => $c{status}, headers => [ $json ],
                          body => $c{body}, chunked => $c{chunked},
                          chunk_size => 16, cut => length($head) + $c{keep},
                          end => $c{end}, hold_ms => 200);

    my $x = $t->request_and_logs($method, $target, body => $body,
                                 http => $c{http}, host => $c{host});
    $t->upstream_response('global');
    is(scalar $t->upstream('global'), 1, "$name: forwarded once");

    my $r = $x->{r};
    my $relayed = $c{chunked} ? dechunk_prefix(substr($framed, 0, $c{keep}))
                              : substr($c{body}, 0, $c{keep});

    is($r->{status}, $c{status}, "$name: the upstream's status relayed");
    # buffered, nginx drops a buffer it was still filling when the
    # upstream resets; nginx 1.30 and newer (seen on 1.30.4 and 1.31.4)
    # relay a few bytes less of a body cut short than came: either way the
    # client gets a prefix, maybe empty, and the line is made of it
    if ($c{partial} || $t->nginx_version >= 1030000) {
        ok(index($relayed, $r->{body}) == 0,
           "$name: the client got a prefix of the body")
            or diag(sprintf "got %d bytes: %s", length $r->{body},
                    substr($r->{body}, 0, 80));
        $relayed = $r->{body};
    } else {
        is_bytes($r->{body}, $relayed,
                 "$name: the client got the body as far as it came");
    }
    if ($c{http} && $c{http} eq '1.1') {
        is($r->{headers}{'transfer-encoding'}[0], 'chunked',
           "$name: relayed chunked");
        unlike($r->{raw}, qr/\r\n0\r\n\r\n\z/,
               "$name: no last chunk: the client sees the answer is cut");
    } elsif (!$c{chunked}) {
        is($r->{headers}{'content-length'}[0], length $c{body},
           "$name: the upstream's Content-Length relayed");
    }

    my @why = $t->nginx_log_lines('error', $x->{offset});
    is(scalar(grep { $_ =~ $c{nginx} } @why), 1, "$name: nginx says why")
        or diag(join "\n", @why);

    if ($c{status} < 400) {
        is(scalar @{$x->{lines}}, 0, "$name: nothing from the module")
            or diag(join "\n", map { $_->{line} } @{$x->{lines}});
        return $r;
    }

    $t->is_error_line($name, $x, source => 'upstream', status => $c{status},
                      operation => $c{op}, region => 'global',
                      subuser => undef, truncated => 1,
                      errors => [ [ undef, length $relayed
                                           ? fold($relayed) : $c{reason} ] ]);
    return $r;
}

# the data of a chunked body as far as it goes: whole chunks and the
# start of a cut one
sub dechunk_prefix {
    my ($framed) = @_;
    my $data = '';
    while ($framed =~ s/^([0-9a-f]+)\r\n//) {
        my $size = hex $1;
        $data .= substr($framed, 0, $size);
        substr($framed, 0, $size + 2) = '';
    }
    return $data;
}

my $reading = qr/while reading upstream/;
my $reset = qr/(?:recv|readv)\(\) failed \(104: Connection reset by peer\) $reading/;
my $closed = qr/upstream prematurely closed connection $reading/;

for my $host ('localhost', 'stream.test') {
    my $how = $host eq 'stream.test' ? ', unbuffered' : '';
    my $partial = $host eq 'localhost';

    broken_answer("200 reset in the body$how", host => $host, op => 'list',
                  status => 200, body => $ok_body, keep => 1000,
                  end => 'reset', partial => $partial, nginx => $reset);
    broken_answer("200 closed in the body$how", host => $host, op => 'list',
                  status => 200, body => $ok_body, keep => 1000,
                  end => 'close', nginx => $closed);
    broken_answer("400 reset in the body$how", host => $host, op => 'create',
                  status => 400, reason => 'Bad Request', body => $sg400,
                  keep => 40, end => 'reset', partial => $partial,
                  nginx => $reset);
    broken_answer("400 closed in the body$how", host => $host,
                  op => 'update', status => 400, reason => 'Bad Request',
                  body => $sg400, keep => 40, end => 'close',
                  nginx => $closed);
    broken_answer("400 chunked, cut before the last chunk$how",
                  host => $host, op => 'update', status => 400,
                  reason => 'Bad Request', body => $sg400, chunked => 1,
                  keep => 63, end => 'close', nginx => $closed);
    broken_answer("400 chunked, cut before the last chunk, HTTP/1.1$how",
                  host => $host, op => 'create', status => 400,
                  reason => 'Bad Request', body => $sg400, chunked => 1,
                  keep => 63, end => 'close', http => '1.1',
                  nginx => $closed);
    broken_answer("400 chunked, cut inside a chunk$how", host => $host,
                  op => 'list', status => 400, reason => 'Bad Request',
                  body => $sg400, chunked => 1, keep => 50, end => 'close',
                  nginx => $closed);
    broken_answer("500 chunked, reset inside a chunk$how", host => $host,
                  op => 'list', status => 500,
                  reason => 'Internal Server Error', body => $sg400,
                  chunked => 1, keep => 50, end => 'reset',
                  partial => $partial, nginx => $reset);
}


# -- memory -------------------------------------------------------------------

# every fault above once: what a worker that stays up for weeks sees
my @batch = (
    [ [ 'list', 'create' ], { host => 'down.test' }, {} ],
    [ [ 'list' ], { host => 'slow.test' },
      { status => 200, body => '{}', delay_ms => 700 } ],
    [ [ 'list', 'create', 'update' ], {}, { raw => '', end => 'reset' } ],
    [ [ 'list', 'update' ], {},
      { raw => "HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\n\r\n", end => 'close' } ],
    [ [ 'list', 'update' ], {},
      { raw => "HTTP/1.1 400 Bad Request\r\nX-Big: " . ('b' x 8192)
               . "\r\n\r\n", end => 'close' } ],
    [ [ 'list', 'create', 'update' ], {},
      { status => 400, headers => [ $json ], body => $sg400, cut => 120,
        end => 'reset', hold_ms => 20 } ],
    [ [ 'list', 'update' ], {},
      { status => 400, headers => [ $json ], body => $sg400 x 100,
        chunked => 1, chunk_size => 512, cut => 4000, end => 'close' } ],
);

$t->memory_returned('upstream faults', 20, 256, sub {
    for my $b (@batch) {
        my ($ops, $req, $spec) = @$b;
        $t->upstream_response('global', %$spec) if %$spec;
        for my $op (@$ops) {
            my ($method, $target, $body) = @{$requests{$op}};
            my @type = defined $body ? ('Content-Type' => 'application/json')
                                     : ();
            $t->request($method, $target, body => $body,
                        headers => [ Host => $req->{host} // 'localhost',
                                     @type ]);
        }
        $t->upstream_response('global');
    }
    $t->upstream('global');
});

$t->done_testing;
