# HTTP/2, over TLS (ALPN h2) and in cleartext (prior knowledge): every
# operation; bodies valid and not, in one DATA frame or in many, across the
# flow-control windows; a GET or DELETE whose stream ends with an empty
# DATA frame; hostile :path values; the client's authorization in odd
# forms; a stream reset in the middle of a body; 100 streams at once on
# one connection.  What the client gets, what the upstream receives and
# what the error log says are checked as for HTTP/1.x.

use strict;
use warnings;

use Test::More;
use SGTest qw(create_body body_error invalid_json_at is_bytes
              is_sendgrid_error);

my $t = SGTest->new;

my $key = 'SG.http2-test-key.0123456789abcdefABCDEF';
my $client_key = 'SG.client-own-h2-key.0000000000';
$t->key_file('global.key', "$key\n");
$t->secret($client_key);

my %port = (tls => SGTest::free_port(), cleartext => SGTest::free_port());
my $location = 'sendgrid_api_key_file %%DIR%%/global.key;';

# what $http_authorization shows once the gateway ran, for the end
my $auth_log = <<'CONF';
    log_format auth '$status auth=[$http_authorization]';
CONF

$t->start($auth_log
          . SGTest::gateway_server(undef, '', location => $location)
          . join '', map {
                SGTest::gateway_server(undef, 'client_max_body_size 1m;'
                                       . 'access_log %%DIR%%/logs/auth.log auth;',
                    location => $location,
                    listen => $t->http2_listen($port{$_},
                                               tls => $_ eq 'tls'))
            } sort keys %port);

my $C = '/v3/marketing/integrations';
my $NOT_FOUND = '{"errors":[{"message":"resource not found","field":null}]}';
my $HAS_BODY = body_error('this request must not have a body');
my $JSON = ['content-type', 'application/json'];

# A stream: the pseudo-headers, then the headers given; options data,
# end, pause as h2client takes them.
sub stream {
    my ($mode, $method, $path, %o) = @_;
    return { headers => [ [':method', $method],
                          [':scheme', $mode eq 'tls' ? 'https' : 'http'],
                          [':authority', 'localhost'], [':path', $path],
                          @{$o{headers} // []} ],
             map { exists $o{$_} ? ($_ => $o{$_}) : () }
             qw(data end pause) };
}

# Sends the streams on one connection of that mode; the answers, in order.
sub h2 {
    my ($mode, @streams) = @_;
    my $r = $t->h2(port => $port{$mode}, tls => $mode eq 'tls',
                   streams => \@streams);
    is($r->{error}, undef, "$mode: the connection worked")
        or diag($r->{error});
    return @{$r->{streams}};
}

# The requests the global mock received, by their x-seq header.
sub upstream_by_seq {
    my %seen;
    for my $u ($t->upstream('global')) {
        my @seq = SGTest::header_values($u, 'x-seq');
        push @{$seen{$seq[0] // ''}}, $u;
    }
    return \%seen;
}

# Checks that the request with x-seq seq reached the upstream once, as
# method target, with exactly these client headers between the proxy's
# own and the key, and the body byte for byte.
sub is_forwarded {
    my ($seen, $seq, $method, $target, $headers, $body, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my @u = @{$seen->{$seq} // []};
    is(scalar @u, 1, "$name: forwarded once");
    my $u = $u[0] // { headers => [], body => '', method => '', target => '' };

    is("$u->{method} $u->{target}", "$method $target",
       "$name: method and target");
    is_bytes($u->{body}, $body // '', "$name: body byte for byte");
    is_deeply($u->{headers},
              [ $t->proxy_first($body), @$headers,
                ['Authorization', "Bearer $key"] ],
              "$name: every header upstream, the key once and last");
}

# A malformed request that nginx itself refuses, before any module runs:
# nginx before 1.23.4 resets the stream (PROTOCOL_ERROR), later ones answer
# 400 with their own page.
sub is_refused_by_nginx {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if ($t->nginx_version < 1023004) {
        ok(!defined $r->{status} && ($r->{reset} // -1) == 1,
           "$name: the stream reset (PROTOCOL_ERROR)");
    } else {
        ok(($r->{status} // 0) == 400
           && ($r->{headers}{'content-type'}[0] // '') =~ m{^text/html},
           "$name: nginx's own 400");
    }
}

sub headers_text {
    return join '', map { "$_->[0]: $_->[1]\n" } @{$_[0]};
}


for my $mode (sort keys %port) {

    # 1. every operation, each stream with its own x-seq
    my $post = create_body(write_key => 'a123456', label => '"caf\u00e9"');
    my $patch = '{"label":"new label","filters":{"email_events":[]}}';
    my @ops = (
        [ list => GET => $C, undef, 200 ],
        [ create => POST => $C, $post, 201 ],
        [ delete => DELETE => "$C?ids=5a1234", undef, 204 ],
        [ 'delete several' => DELETE => "$C?ids=a,b%2Cc&ids=d-_9", undef, 204 ],
        [ get => GET => "$C/5a1234", undef, 200 ],
        [ update => PATCH => "$C/" . ('Z' x 128), $patch, 200 ],
    );

    my @answers = h2($mode, map {
        my ($op, $method, $target, $body) = @$_;
        stream($mode, $method, $target,
               headers => [ ['user-agent', 'team-a/1.0'], ['x-seq', $op],
                            ['authorization', "Bearer $client_key"],
                            defined $body ? $JSON : () ],
               defined $body ? (data => [$body]) : ())
    } @ops);

    my $seen = upstream_by_seq();
    for my $i (0 .. $#ops) {
        my ($op, $method, $target, $body, $status) = @{$ops[$i]};
        is($answers[$i]{status}, $status, "$mode $op: the upstream's status");
        is_forwarded($seen, $op, $method, $target,
                     [ ['user-agent', 'team-a/1.0'], ['x-seq', $op],
                       defined $body ? ['content-type', 'application/json']
                                     : () ],
                     $body, "$mode $op");
    }


    # 2. bodies that break the rules: the gateway's answer, nothing
    #    upstream, one normalized line each
    my @bad = (
        [ 'POST {}', POST => $C, '{}', 400,
          body_error('destination is required, filters is required, '
                     . 'properties is required') ],
        [ 'POST an array', POST => $C, '[]', 400,
          body_error('request body must be a JSON object') ],
        [ 'POST another destination', POST => $C,
          create_body(write_key => 'a123456', destination => '"Other"'), 400,
          body_error('destination must be Segment') ],
        [ 'PATCH a number label', PATCH => "$C/abc", '{"label":1}', 400,
          body_error('label must be a string') ],
        [ 'POST no body', POST => $C, undef, 400,
          body_error('request body is empty') ],
        [ 'POST text/plain', POST => $C, $post, 415,
          body_error('Content-Type must be application/json'),
          ['content-type', 'text/plain'] ],
        [ 'DELETE with a body', DELETE => "$C?ids=a", '{}', 400, $HAS_BODY ],
        [ 'GET with one body byte', GET => $C, ' ', 400, $HAS_BODY ],
    );

    my $logged = $t->error_log_size;
    @answers = h2($mode, map {
        my ($name, $method, $target, $body, $status, $answer, $type) = @$_;
        stream($mode, $method, $target,
               headers => [ $type // $JSON ],
               defined $body ? (data => [$body]) : ())
    } @bad);

    for my $i (0 .. $#bad) {
        my ($name, $method, $target, $body, $status, $answer) = @{$bad[$i]};
        my $r = $answers[$i];
        is($r->{status}, $status, "$mode $name: status $status");
        is_deeply($r->{headers}{'content-type'}, ['application/json'],
                  "$mode $name: application/json");
        is_bytes($r->{body}, $answer, "$mode $name: exact body");
    }
    $t->nothing_upstream("$mode bad bodies");

    my @lines = $t->sendgrid_log_lines(since => $logged);
    is_deeply([ sort map { "$_->{obj}{status} $_->{obj}{errors}[0]{message}" }
                @lines ],
              [ sort map { my $m = SGTest::json_body({ body => $_->[5] });
                           "$_->[4] $m->{errors}[0]{message}" } @bad ],
              "$mode bad bodies: one normalized line each");


    # 3. bodies in many DATA frames, across the flow-control windows
    #    (nginx gives a stream 64 KB before its body is read)
    my $big = create_body(write_key => 'a123456',
                          label => '"' . ('x' x 300_000) . '"');
    my $broken = substr($big, 0, -1) . ',}';
    my $one_by_one = '{"label":"one byte a frame"}';

    $logged = $t->error_log_size;
    @answers = h2($mode,
        stream($mode, POST => $C, headers => [ $JSON, ['x-seq', 'big'] ],
               data => [ unpack '(a997)*', $big ]),
        stream($mode, PATCH => "$C/abc",
               headers => [ $JSON, ['x-seq', 'bytes'] ],
               data => [ split //, $one_by_one ]),
        stream($mode, POST => $C, headers => [ $JSON, ['x-seq', 'broken'] ],
               data => [ unpack '(a4096)*', $broken ]),
        stream($mode, POST => $C, headers => [ $JSON, ['x-seq', 'large'] ],
               data => [ ('x' x 16384) x 70 ]));

    $seen = upstream_by_seq();
    is($answers[0]{status}, 201, "$mode 300 KB in 997-byte frames: created");
    is_forwarded($seen, 'big', POST => $C,
                 [ ['content-type', 'application/json'], ['x-seq', 'big'] ],
                 $big, "$mode 300 KB in 997-byte frames");
    is($answers[1]{status}, 200, "$mode one byte a frame: updated");
    is_forwarded($seen, 'bytes', PATCH => "$C/abc",
                 [ ['content-type', 'application/json'], ['x-seq', 'bytes'] ],
                 $one_by_one, "$mode one byte a frame");

    is($answers[2]{status}, 400, "$mode 300 KB broken at its end: 400");
    is_bytes($answers[2]{body},
             body_error(invalid_json_at(length $broken)),
             "$mode 300 KB broken at its end: where it breaks");
    is_deeply([ sort keys %$seen ], [ 'big', 'bytes' ],
              "$mode many frames: nothing else upstream");

    is($answers[3]{status}, 413, "$mode 1.1 MB: 413");
    is_bytes($answers[3]{body},
             '{"errors":[{"message":"request body is too large","field":null}]}',
             "$mode 1.1 MB: the gateway's JSON");
    is_deeply([ sort map { $_->{obj}{status} }
                $t->sendgrid_log_lines(since => $logged) ],
              [ 400, 413 ], "$mode many frames: two normalized lines");


    # 4. a GET or DELETE whose stream ends with an empty DATA frame has no
    #    body: forwarded as such, without Content-Length
    my @empty = (
        [ 'list', GET => $C, 200, [''] ],
        [ 'get', GET => "$C/abc", 200, [] ],
        [ 'delete', DELETE => "$C?ids=abc", 204, [] ],
        [ 'list, three empty frames', GET => $C, 200, ['', ''] ],
    );
    @answers = h2($mode, map {
        my ($name, $method, $target, $status, $data) = @$_;
        stream($mode, $method, $target, headers => [ ['x-seq', $name] ],
               data => $data, end => 'empty')
    } @empty);

    $seen = upstream_by_seq();
    for my $i (0 .. $#empty) {
        my ($name, $method, $target, $status) = @{$empty[$i]};
        is($answers[$i]{status}, $status,
           "$mode $name ending with an empty DATA frame: forwarded")
            or diag($answers[$i]{body});
        is_forwarded($seen, $name, $method, $target, [ ['x-seq', $name] ],
                     undef, "$mode $name ending with an empty DATA frame");
    }


    # 5. hostile :path values: the gateway's 404, or nginx's own 400 for
    #    what it does not take as a path; nothing upstream either way
    my @paths = (
        [ "$C/../integrations", 404, $NOT_FOUND ],
        [ "/$C", 404, $NOT_FOUND ],
        [ "$C/", 404, $NOT_FOUND ],
        [ "$C;x", 404, $NOT_FOUND ],
        [ "$C/a#b", 404, $NOT_FOUND ],
        [ "$C/a\\b", 404, $NOT_FOUND ],
        [ "$C/%61", 404, $NOT_FOUND ],
        [ "$C/\xc3\xa9", 404, $NOT_FOUND ],
        [ "$C/" . ('a' x 129), 404, $NOT_FOUND ],
        [ "$C/" . ('a' x 3000), 404, $NOT_FOUND ],
        [ "http://localhost$C", 400 ],
        [ "$C/a b", 400 ],
        [ "$C/a\tb", 400 ],
        [ '', 400 ],
        [ '*', 400 ],
        [ 'v3/marketing/integrations', 400 ],
    );
    @answers = h2($mode, map { stream($mode, GET => $_->[0]) } @paths);
    for my $i (0 .. $#paths) {
        my ($path, $status, $body) = @{$paths[$i]};
        (my $name = substr($path, 0, 60)) =~ s/([^\x21-\x7e])/sprintf '\\x%02x', ord $1/ge;
        my $r = $answers[$i];
        is($r->{status}, $status, "$mode :path '$name': $status");
        if (defined $body) {
            is_bytes($r->{body}, $body, "$mode :path '$name': the gateway's 404");
        } else {
            like($r->{headers}{'content-type'}[0] // '', qr{^text/html},
                 "$mode :path '$name': nginx's own page");
        }
    }
    $t->nothing_upstream("$mode hostile :path values");

    # a :path with CR LF or NUL: refused by nginx
    @answers = h2($mode, stream($mode, GET => "$C/a\r\nx-y: z"),
                  stream($mode, GET => "$C/a\x00"));
    is_refused_by_nginx($_, "$mode :path with a control byte") for @answers;
    $t->nothing_upstream("$mode :path with control bytes");


    # 6. the client's authorization in odd forms: the upstream sees the
    #    gateway's key once, whatever the client sent, or nothing
    my @auth = (
        [ 'authorization', [ ['authorization', "Bearer $client_key"] ] ],
        [ 'an empty authorization', [ ['authorization', ''] ] ],
        [ 'authorization from the HPACK table',
          [ ['authorization', "Bearer $client_key"] ] ],
        [ 'authorization in cookie crumbs',
          [ ['cookie', 'a=1'], ['cookie', 'authorization=Bearer crumb'] ],
          [ ['cookie', 'a=1; authorization=Bearer crumb'] ] ],
        [ 'proxy-authorization', [ ['proxy-authorization', 'Basic eDp5'] ],
          [ ['proxy-authorization', 'Basic eDp5'] ] ],
    );
    @answers = h2($mode, map {
        stream($mode, GET => $C, headers => [ ['x-seq', $_->[0]],
                                              @{$_->[1]} ])
    } @auth);

    $seen = upstream_by_seq();
    for my $i (0 .. $#auth) {
        my ($name, $sent, $passed) = @{$auth[$i]};
        is($answers[$i]{status}, 200, "$mode $name: forwarded");
        is_forwarded($seen, $name, GET => $C,
                     [ ['x-seq', $name], @{$passed // []} ], undef,
                     "$mode $name");
    }

    # nginx refuses these itself: two authorization fields (the way HTTP/2
    # lets a cookie be split) with 400, an upper-case field name (invalid
    # in HTTP/2) as a malformed request
    @answers = h2($mode,
        stream($mode, GET => $C,
               headers => [ ['authorization', 'Bearer part-one'],
                            ['authorization', 'part-two'] ]),
        stream($mode, GET => $C,
               headers => [ ['Authorization', 'Bearer upper-case'] ]),
        stream($mode, GET => $C,
               headers => [ ['authorization', 'Bearer lower'],
                            ['AUTHORIZATION', 'Bearer upper'] ]));
    is($answers[0]{status}, 400, "$mode two authorization fields: 400");
    like($answers[0]{headers}{'content-type'}[0] // '', qr{^text/html},
         "$mode two authorization fields: nginx's own page");
    is_refused_by_nginx($answers[$_], "$mode an upper-case Authorization ($_)")
        for 1, 2;
    $t->nothing_upstream("$mode authorization refused by nginx");

    # several on-behalf-of fields: refused by the gateway on every nginx
    # (nginx 1.23 and newer join them into one value, "a, b")
    @answers = h2($mode,
        stream($mode, GET => $C, headers => [ ['on-behalf-of', 'acme'],
                                              ['on-behalf-of', 'other'] ]),
        stream($mode, POST => $C,
               headers => [ $JSON, ['on-behalf-of', 'acme'],
                            ['x-sg-elas-acl', 'x'], ['on-behalf-of', 'acme'] ],
               data => [ $post ]));
    is_sendgrid_error($answers[$_], 400, "$mode several on-behalf-of ($_)",
                      count => 1)
        for 0, 1;
    $t->nothing_upstream("$mode several on-behalf-of");


    # 7. a stream reset halfway through its body, once with the body held
    #    in the 64 KB nginx reads before the module asks, once beyond it:
    #    nothing forwarded, and the connection serves the next stream
    $logged = $t->error_log_size;
    @answers = h2($mode,
        stream($mode, POST => $C, headers => [ $JSON, ['x-seq', 'small'] ],
               data => [ substr($post, 0, 40) ], end => 'reset',
               pause => 0.3),
        stream($mode, POST => $C, headers => [ $JSON, ['x-seq', 'half'] ],
               data => [ unpack '(a8192)*', substr($big, 0, 150_000) ],
               end => 'reset', pause => 0.3),
        stream($mode, GET => "$C/after", headers => [ ['x-seq', 'after'] ],
               pause => 0.6));
    ok(!defined $answers[$_]{status}, "$mode reset stream $_: no answer")
        for 0, 1;
    is($answers[2]{status}, 200, "$mode a stream after the resets: answered");

    $seen = upstream_by_seq();
    is_deeply([ sort keys %$seen ], ['after'],
              "$mode reset streams: nothing of them upstream");
    is_deeply([ map { $_->{line} }
                grep { $_->{line} !~ /\[(?:info|notice|debug)\]/ }
                $t->sendgrid_log_lines(since => $logged, all => 1) ], [],
              "$mode reset streams: no line from the module above info");


    # 8. 100 streams at once on one connection: valid creates (in three
    #    frames), creates with another destination, gets and updates;
    #    each answered as it alone would be, each valid one forwarded
    #    exactly as sent
    my (@streams, @want);
    for my $i (0 .. 99) {
        my $seq = "s$i";
        my $kind = $i % 4;
        if ($kind == 0) {
            my $b = create_body(write_key => 'a123456', label => "\"$seq\"");
            push @streams, stream($mode, POST => $C,
                                  headers => [ $JSON, ['x-seq', $seq] ],
                                  data => [ unpack '(a40)*', $b ]);
            push @want, [ $seq, 201, POST => $C, $b ];
        } elsif ($kind == 1) {
            my $b = create_body(write_key => 'a123456',
                                destination => "\"D$i\"");
            push @streams, stream($mode, POST => $C,
                                  headers => [ $JSON, ['x-seq', $seq] ],
                                  data => [ $b ]);
            push @want, [ $seq, 400, undef, undef, undef,
                          body_error('destination must be Segment') ];
        } elsif ($kind == 2) {
            push @streams, stream($mode, GET => "$C/id-$i",
                                  headers => [ ['x-seq', $seq] ]);
            push @want, [ $seq, 200, GET => "$C/id-$i", undef ];
        } else {
            my $b = "{\"label\":\"$seq\"}";
            push @streams, stream($mode, PATCH => "$C/id-$i",
                                  headers => [ $JSON, ['x-seq', $seq] ],
                                  data => [ $b ]);
            push @want, [ $seq, 200, PATCH => "$C/id-$i", $b ];
        }
    }

    $logged = $t->error_log_size;
    @answers = h2($mode, @streams);
    $seen = upstream_by_seq();

    my (@wrong, @not_forwarded);
    for my $i (0 .. 99) {
        my ($seq, $status, $method, $target, $body, $answer) = @{$want[$i]};
        my $r = $answers[$i];
        push @wrong, "$seq: status " . ($r->{status} // 'none')
            if ($r->{status} // 0) != $status
               || defined $answer && $r->{body} ne $answer;

        my @u = @{$seen->{$seq} // []};
        my $type = defined $body ? [ ['content-type', 'application/json'] ]
                                 : [];
        my $ok = !defined $method ? !@u
            : @u == 1 && "$u[0]{method} $u[0]{target}" eq "$method $target"
              && $u[0]{body} eq ($body // '')
              && headers_text($u[0]{headers})
                 eq headers_text([ $t->proxy_first($body), @$type,
                                   ['x-seq', $seq],
                                   ['Authorization', "Bearer $key"] ]);
        push @not_forwarded, $seq unless $ok;
    }
    is_deeply(\@wrong, [], "$mode 100 streams: each answered as alone");
    is_deeply(\@not_forwarded, [],
              "$mode 100 streams: each valid one forwarded once, exactly, "
              . 'none of the others');
    is(scalar(() = $t->sendgrid_log_lines(since => $logged)), 25,
       "$mode 100 streams: a normalized line for each refused one");
}

# the key never shows as the client's header: $http_authorization of every
# request the gateway let through is empty, whatever the client sent
my @passed = grep { /^2\d\d / } split /\n/,
             SGTest::slurp($t->dir . '/logs/auth.log');
ok(@passed > 100, scalar(@passed) . ' requests let through logged');
is_deeply([ grep { !/ auth=\[-\]$/ } @passed ], [],
          '$http_authorization empty on each of them');

$t->done_testing;
