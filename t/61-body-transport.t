# The same verdict and the same upstream bytes whatever way the body
# travels, for the bodies of the table (t/lib/SGBodyCases.pm) marked
# transport: in memory, spilled to a temporary file, in a file only,
# chunked in pieces of 1, 7 and 1000 bytes, written slowly in several TCP
# writes, behind Expect: 100-continue, with proxy_request_buffering off;
# client_max_body_size exactly and one byte over.

use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use SGTest qw(create_body body_error invalid_json_at is_bytes);
use SGBodyCases;

my $t = SGTest->new;
$t->key_file('global.key', "SG.body-transport-global.0123456789abcdef\n");

my $WK = 'wk-transport-Q8mZ3';
$t->secret($WK);

# an upstream that only listens: whether nginx ever connects to it
my $sink = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Proto => 'tcp', Listen => 16, ReuseAddr => 1)
    or die "sink: $!";
my $sink_port = $sink->sockport;

# the body that exactly fills client_max_body_size on small.test
my $EXACT = post();
my $LIMIT = length $EXACT;

(my $conf = <<'CONF') =~ s/%%SINK%%/$sink_port/g;
    upstream sink { server 127.0.0.1:%%SINK%%; }

    sendgrid_api_key_file %%DIR%%/global.key;
CONF

$conf .= SGTest::gateway_server(@$_) for
    [ 'localhost', 'client_body_buffer_size 2m;' ],
    [ 'file.test', 'client_body_buffer_size 1k;' ],
    [ 'fileonly.test', 'client_body_in_file_only clean;' ],
    [ 'stream.test', <<'CONF' ],
        client_body_buffer_size 1k;
        proxy_request_buffering off;
        proxy_http_version 1.1;
CONF
    [ 'sink.test', <<'CONF' ],
        proxy_request_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 5s;
        sendgrid_upstream_host global sink;
CONF
    [ 'small.test', "client_max_body_size $LIMIT;" ];

$t->start($conf);

my $MOCK_BODY = '{"mock":"upstream"}';
$t->upstream_response('global', status => 200, body => $MOCK_BODY,
                      headers => [['Content-Type', 'application/json']]);

my $COLLECTION = '/v3/marketing/integrations';
my $TOO_LARGE = '{"errors":[{"message":"request body is too large",'
                . '"field":null}]}';


# --- bodies ----------------------------------------------------------------

# a create body with the file's write_key (undef removes a member)
sub post {
    return create_body(write_key => $WK,
                       filters => '{"email_events":["open","click"]}', @_);
}

# characters of every width and escapes, so that chunk and buffer
# boundaries fall inside them
my $MIX = "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" . '\u00e9\ud83d\ude00\"\\\\';
my $BIG = $MIX x 1551;                  # about 50 KB

# the bodies of the table sent every way
my @BODIES = grep { $_->{transport} } SGBodyCases::cases();
my ($BAD_BYTE) = grep { $_->{name} =~ /bad byte near the end/ } @BODIES;
$t->secret(SGBodyCases::secrets());

cmp_ok(scalar @BODIES, '>=', 10, 'the transport bodies of the table');
ok(!grep({ $_->{op} ne 'create' || $_->{strict} } @BODIES)
   && $BAD_BYTE, 'all of them POST bodies, without sendgrid_strict');


# --- ways to send ----------------------------------------------------------

sub head {
    my ($host, %o) = @_;
    my $h = "POST $COLLECTION HTTP/1.1\r\nHost: $host\r\n"
            . "Content-Type: application/json\r\nConnection: close\r\n";
    $h .= "Expect: 100-continue\r\n" if $o{expect};
    $h .= $o{chunked} ? "Transfer-Encoding: chunked\r\n"
                      : "Content-Length: $o{length}\r\n";
    return "$h\r\n";
}

sub chunk {
    my ($body, $size) = @_;
    my $out = '';
    for (my $i = 0; $i < length $body; $i += $size) {
        my $part = substr($body, $i, $size);
        $out .= sprintf("%x\r\n%s\r\n", length $part, $part);
    }
    return "${out}0\r\n\r\n";
}

# bytes cut in n pieces of about the same size, the first one byte long
sub pieces {
    my ($bytes, $n) = @_;
    return ($bytes) if length $bytes < 2;
    my @p = (substr($bytes, 0, 1));
    my $rest = substr($bytes, 1);
    my $size = int(length($rest) / ($n - 1)) + 1;
    push @p, substr($rest, 0, $size, '') while length $rest;
    return @p;
}

# Expect: 100-continue: the interim answer, then the body
sub expect_continue {
    my ($host, $body, %o) = @_;
    return $t->expect_continue(
        head($host, expect => 1, chunked => $o{chunked},
             length => length $body),
        $o{chunked} ? chunk($body, $o{chunked}) : $body);
}

my %TRANSPORTS = (
    'in memory' => sub {
        $t->request(POST => $COLLECTION, body => $_[0],
                    headers => [ 'Content-Type' => 'application/json' ]);
    },
    'spilled to a file' => sub {
        $t->request(POST => $COLLECTION, body => $_[0],
                    headers => [ Host => 'file.test',
                                 'Content-Type' => 'application/json' ]);
    },
    'in a file only' => sub {
        $t->request(POST => $COLLECTION, body => $_[0],
                    headers => [ Host => 'fileonly.test',
                                 'Content-Type' => 'application/json' ]);
    },
    'request buffering off' => sub {
        $t->request(POST => $COLLECTION, body => $_[0],
                    headers => [ Host => 'stream.test',
                                 'Content-Type' => 'application/json' ]);
    },
    'slowly, Content-Length' => sub {
        $t->raw([ head('localhost', length => length $_[0]),
                  pieces($_[0], 4) ], pause => 0.05);
    },
    'slowly, chunked' => sub {
        my $c = chunk($_[0], 1000);
        $t->raw([ head('file.test', chunked => 1), pieces($c, 4) ],
                pause => 0.05);
    },
    'slowly, request buffering off' => sub {
        $t->raw([ head('stream.test', length => length $_[0]),
                  pieces($_[0], 4) ], pause => 0.05);
    },
    'Expect: 100-continue' => sub {
        expect_continue('localhost', $_[0]);
    },
    'Expect: 100-continue, chunked' => sub {
        expect_continue('file.test', $_[0], chunked => 999);
    },
);

for my $size (1, 7, 1000) {
    $TRANSPORTS{"chunked by $size"} = sub {
        $t->request(POST => $COLLECTION, body => $_[0], chunked => 1,
                    chunk_size => $size, http => '1.1',
                    headers => [ 'Content-Type' => 'application/json' ]);
    };
}

for my $size (7, 1000) {
    $TRANSPORTS{"spilled to a file, chunked by $size"} = sub {
        $t->request(POST => $COLLECTION, body => $_[0], chunked => 1,
                    chunk_size => $size, http => '1.1',
                    headers => [ Host => 'file.test',
                                 'Content-Type' => 'application/json' ]);
    };
}

$TRANSPORTS{'in a file only, chunked by 1000'} = sub {
    $t->request(POST => $COLLECTION, body => $_[0], chunked => 1,
                chunk_size => 1000, http => '1.1',
                headers => [ Host => 'fileonly.test',
                             'Content-Type' => 'application/json' ]);
};

$TRANSPORTS{'request buffering off, chunked by 7'} = sub {
    $t->request(POST => $COLLECTION, body => $_[0], chunked => 1,
                chunk_size => 7, http => '1.1',
                headers => [ Host => 'stream.test',
                             'Content-Type' => 'application/json' ]);
};


my $cases = 0;

sub verdict {
    my ($name, $r, $c) = @_;

    $cases++;

    if (defined $c->{message}) {
        $t->is_refused($r, 400, body_error($c->{message}), $name);
        return;
    }

    is($r->{status}, 200, "$name: forwarded")
        or diag(substr($r->{body} // '', 0, 300));
    is($r->{body}, $MOCK_BODY, "$name: the upstream's answer");
    my $u = $t->forwarded_once('global', $name);
    is_bytes($u->{body}, $c->{body}, "$name: body byte for byte");
}

for my $tr (sort keys %TRANSPORTS) {
    for my $c (@BODIES) {
        my $r = $TRANSPORTS{$tr}->($c->{body});
        my $name = "$c->{name}, $tr";
        verdict($name, $r, $c);
        is($r->{interim}, 1, "$name: 100 Continue first")
            if $tr =~ /^Expect/;
    }
}


# --- nothing reaches an upstream before the whole body is in ---------------

sub sink_connections {
    my ($wait) = @_;
    my $n = 0;
    my $sel = IO::Select->new($sink);
    while ($sel->can_read($wait)) {
        my $c = $sink->accept or last;
        close $c;
        $n++;
        $wait = 0;
    }
    return $n;
}

for my $c (grep { defined $_->{message} } @BODIES) {
    my $name = "request buffering off, $c->{name}, sent slowly";
    my $r = $t->raw([ head('sink.test', length => length $c->{body}),
                      pieces($c->{body}, 4) ], pause => 0.05);
    $cases++;
    is($r->{status}, 400, "$name: 400");
    is_bytes($r->{body}, body_error($c->{message}), "$name: error body");
    is(sink_connections(0.2), 0, "$name: no connection upstream");
}

{
    # a valid body: the upstream connection opens only once the body is in
    my $body = post(label => qq("$BIG"));
    my $name = 'request buffering off, valid 50 KB body';

    my $s = $t->connect;

    SGTest::syswrite_all($s, head('sink.test', length => length $body)
                             . substr($body, 0, -10));
    is(sink_connections(0.5), 0,
       "$name: no upstream connection before the last bytes");

    SGTest::syswrite_all($s, substr($body, -10));

    my $up;
    $up = $sink->accept if IO::Select->new($sink)->can_read(5);
    ok($up, "$name: upstream connection once the body is in");

    my $got = '';
    if ($up) {
        binmode $up;
        my $deadline = time + 5;
        while (time < $deadline) {
            last if $got =~ /\r\n\r\n/
                    && $got =~ /Content-Length: (\d+)/i
                    && length($got) >= index($got, "\r\n\r\n") + 4 + $1;
            IO::Select->new($up)->can_read(0.5) or next;
            sysread($up, $got, 65536, length $got) or last;
        }
        SGTest::syswrite_all($up, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                  . "Connection: close\r\n\r\n{}");
        close $up;
    }

    my ($up_body) = $got =~ /\r\n\r\n(.*)\z/s;
    is_bytes($up_body, $body, "$name: upstream body byte for byte");

    my $r = SGTest::read_response($s);
    close $s;
    $t->seen_response($r->{raw});
    is($r->{status}, 200, "$name: the upstream's answer");
    $cases++;
}


# --- keep-alive: what follows a refused body is the next request ------------

sub ka_head {
    my ($method, $target, $host, %o) = @_;
    my $h = "$method $target HTTP/1.1\r\nHost: $host\r\n";
    $h .= "Content-Type: $o{type}\r\n" if $o{type};
    $h .= "Transfer-Encoding: chunked\r\n" if $o{chunked};
    $h .= "Content-Length: $o{length}\r\n" if defined $o{length};
    $h .= "Connection: close\r\n" if $o{close};
    return "$h\r\n";
}

{
    my $smuggled = "GET $COLLECTION HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my $valid = post();
    my $json = 'application/json';

    # [ what, first request, its status, its body, host of the second ]
    my @KA = (
        [ 'a 415 with a request as its body',
          ka_head(POST => $COLLECTION, 'localhost', type => 'text/plain',
                  length => length $smuggled) . $smuggled,
          415, body_error('Content-Type must be application/json') ],
        [ 'a 404 with a request as its body',
          ka_head(POST => "$COLLECTION/", 'localhost', type => $json,
                  length => length $smuggled) . $smuggled,
          404, '{"errors":[{"message":"resource not found","field":null}]}' ],
        [ 'a 400 for bad JSON',
          ka_head(POST => $COLLECTION, 'localhost', type => $json,
                  length => length "{$smuggled") . "{$smuggled",
          400, body_error(invalid_json_at(4)) ],
        [ 'a 400 for a chunked body',
          ka_head(POST => $COLLECTION, 'localhost', type => $json,
                  chunked => 1) . chunk("[$smuggled", 5),
          400, body_error(invalid_json_at(4)) ],
        [ 'a 400 for a body in a file',
          ka_head(POST => $COLLECTION, 'file.test', type => $json,
                  length => length $BAD_BYTE->{body}) . $BAD_BYTE->{body},
          400, body_error($BAD_BYTE->{message}) ],
    );

    for my $ka (@KA) {
        my ($what, $first, $status, $body) = @$ka;
        my $name = "keep-alive after $what";

        my @r = $t->keepalive($first,
                              ka_head(POST => $COLLECTION, 'localhost',
                                      type => $json, length => length $valid,
                                      close => 1) . $valid);
        $cases++;

        is(scalar @r, 2, "$name: two answers") or next;
        is($r[0]{status}, $status, "$name: first refused");
        is($r[0]{body}, $body, "$name: first answer's body");
        is($r[1]{status}, 200, "$name: second forwarded");
        my $u = $t->forwarded_once('global', $name);
        is("$u->{method} $u->{target}", "POST $COLLECTION",
           "$name: the second request");
        is_bytes($u->{body}, $valid, "$name: its body");
    }
}


# --- client_max_body_size --------------------------------------------------

sub too_large {
    my ($name, $r) = @_;
    $cases++;
    $t->is_refused($r, 413, $TOO_LARGE, $name);
}

{
    my @small = (Host => 'small.test', 'Content-Type' => 'application/json');
    my $over = "$EXACT ";
    my $bad_over = '{"label":' . ('x' x ($LIMIT - 8));

    my $r = $t->request(POST => $COLLECTION, headers => \@small,
                        body => $EXACT);
    verdict('exactly client_max_body_size, Content-Length', $r,
            { body => $EXACT, ok => 1 });

    $r = $t->request(POST => $COLLECTION, headers => \@small, body => $EXACT,
                     chunked => 1, chunk_size => 7, http => '1.1');
    verdict('exactly client_max_body_size, chunked', $r,
            { body => $EXACT, ok => 1 });

    $r = $t->request(POST => $COLLECTION, headers => \@small, body => $over);
    too_large('one byte over, Content-Length', $r);

    $r = $t->request(POST => $COLLECTION, headers => \@small, body => $over,
                     chunked => 1, chunk_size => 7, http => '1.1');
    too_large('one byte over, chunked', $r);

    $r = $t->request(POST => $COLLECTION, headers => \@small, body => $over,
                     chunked => 1, chunk_size => 1000, http => '1.1');
    too_large('one byte over, one chunk', $r);

    $r = $t->request(POST => $COLLECTION, headers => \@small,
                     body => $bad_over, chunked => 1, chunk_size => 7,
                     http => '1.1');
    too_large('one byte over and not JSON, chunked', $r);

    $r = $t->raw([ head('small.test', chunked => 1),
                   pieces(chunk($over, 10), 4) ], pause => 0.05);
    too_large('one byte over, chunked, sent slowly', $r);

    $r = expect_continue('small.test', $over);
    too_large('one byte over, Expect: 100-continue', $r);
    is($r->{interim}, 0, 'one byte over, Expect: 100-continue: no 100');

    $r = expect_continue('small.test', $EXACT);
    verdict('exactly client_max_body_size, Expect: 100-continue', $r,
            { body => $EXACT, ok => 1 });
}

is(scalar $t->upstream('eu'), 0, 'the EU upstream saw nothing');

note("$cases transport cases");
cmp_ok($cases, '>=', 80, 'at least 80 transport cases');

$t->done_testing;
