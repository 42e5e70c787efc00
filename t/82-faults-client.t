# Client faults: a client that leaves in the middle of its body, one that
# trickles its body, slower than client_body_timeout between two reads or
# not, and one that pipelines valid and invalid requests on one keep-alive
# connection.  Nothing half-read is forwarded, every pipelined answer comes
# in order, each valid request goes up once with its exact bytes, and the
# worker gives its memory back.

use strict;
use warnings;

use Test::More;
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(sleep);
use SGTest qw(body_error chunked create_body invalid_json_at is_bytes);

my $t = SGTest->new;
$t->key_file('global.key', "SG.faults-client-global.0123456789abcdef\n");

my $conf = <<'CONF';
    %%ERROR_VARIABLE_LOGS%%

    sendgrid_api_key_file %%DIR%%/global.key;
    client_body_timeout 1s;

    log_format status '$http_x_test_id $status';
    access_log %%DIR%%/logs/status.log status;
CONF

$conf .= SGTest::gateway_server(@$_) for
    [ 'localhost', 'client_body_buffer_size 64k;' ],
    [ 'file.test', 'client_body_buffer_size 1k;' ],
    [ 'stream.test', "proxy_request_buffering off;\nproxy_http_version 1.1;" ];

$t->start($conf);

# the mock answers a create with the integration, write_key included, as
# SendGrid does: the check that no log shows it is made here, at the end
my $write_key = 'wk_faults_client_9a7c';

my $coll = '/v3/marketing/integrations';
my $item = "$coll/5a1234";
my $create = create_body(write_key => $write_key);
my $big = create_body(write_key => $write_key,
                      label => '"' . ('x' x (512 * 1024)) . '"');


# -- helpers ------------------------------------------------------------------

# The head of a POST of a body of length bytes (chunked: no length; id:
# an X-Test-Id).
sub post_head {
    my ($host, $length, %opt) = @_;
    return "POST $coll HTTP/1.1\r\nHost: $host\r\n"
           . (defined $opt{id} ? "X-Test-Id: $opt{id}\r\n" : '')
           . "Content-Type: application/json\r\n"
           . ($opt{chunked} ? "Transfer-Encoding: chunked\r\n"
                            : "Content-Length: $length\r\n")
           . "\r\n";
}

# Everything the server sends on s until it closes the connection, or
# undef when it has not closed it within seconds.
sub until_closed {
    my ($s, $seconds) = @_;
    my $buf = '';
    my $closed = eval {
        local $SIG{ALRM} = sub { die "open\n" };
        alarm $seconds;
        1 while sysread($s, $buf, 65536, length $buf);
        alarm 0;
        1;
    };
    return $closed ? $buf : undef;
}

# The status nginx logged for the request tagged id (X-Test-Id).
sub logged_status {
    my ($id) = @_;
    for (1 .. 200 * $SGTest::SLOW) {
        my $log = SGTest::slurp($t->dir . '/logs/status.log');
        return $1 if $log =~ /^\Q$id\E (\d{3})$/m;
        sleep 0.025;
    }
    return undef;
}

# -- the client leaves in the middle of its body --------------------------------

# Sends the head and part of a body, then closes (reset => 1: with RST);
# nothing goes upstream, nothing is answered, nginx says why at [info],
# and the module logs nothing: there was no answer.
sub abort_body {
    my ($name, %c) = @_;
    my $offset = $t->error_log_size;

    my $s = $t->connect;
    SGTest::syswrite_all($s, $c{head});
    sleep 0.1;
    SGTest::syswrite_all($s, $c{part});
    sleep 0.2;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $c{reset};
    close $s;

    is(logged_status($c{id}), 400,
       "$name: logged as 400, as nginx does for a body it could not read");
    my @why = $t->nginx_log_lines('info', $offset);
    is(scalar(grep { $_ =~ $c{nginx} } @why), 1, "$name: nginx says why")
        or diag(join "\n", @why);
    is_deeply([ map { $_->{line} } $t->sendgrid_log_lines(since => $offset,
                                                          all => 1) ],
              [], "$name: nothing from the module");
    $t->nothing_upstream($name);
}

my $closed = qr/\] \d+#\d+: \*\d+ client prematurely closed connection, client: /;
my $reset = qr/\] \d+#\d+: \*\d+ recv\(\) failed \(104: Connection reset by peer\), client: /;

for my $host ('localhost', 'file.test', 'stream.test') {
    my $len = length $big;
    for my $how ([ 'closed', 0, $closed ], [ 'reset', 1, $reset ]) {
        my ($word, $rst, $nginx) = @$how;
        my $id = $t->next_test_id;
        abort_body("$word after half the body ($host)", id => $id,
                   head => post_head($host, $len, id => $id),
                   part => substr($big, 0, $len / 2), reset => $rst,
                   nginx => $nginx);
        $id = $t->next_test_id;
        abort_body("$word inside a chunk ($host)", id => $id,
                   head => post_head($host, 0, chunked => 1, id => $id),
                   part => substr(chunked($big, 4096), 0, 10000),
                   reset => $rst, nginx => $nginx);
    }
    my $id = $t->next_test_id;
    abort_body("closed one byte short ($host)", id => $id,
               head => post_head($host, length $create, id => $id),
               part => substr($create, 0, -1), nginx => $closed);
}


# -- the client trickles its body -------------------------------------------------

# Sends the head, then the body in parts with pauses; returns the raw
# answer (undef: the connection stayed open).
sub trickle {
    my ($head, $parts, $pause) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $s = $t->connect;
    SGTest::syswrite_all($s, $head);
    for my $p (@$parts) {
        sleep $pause;
        last unless eval { SGTest::syswrite_all($s, $p); 1 };
    }
    my $raw = until_closed($s, 10);
    close $s;
    $t->seen_response($raw);
    return $raw;
}

for my $host ('localhost', 'stream.test') {
    # 0.4 s between parts, 3.6 s in all: slower than client_body_timeout
    # in all, never between two reads
    for my $chunked (0, 1) {
        my $name = "trickled for 3.6 s, 0.4 s apart ($host"
                   . ($chunked ? ', chunked' : '') . ')';
        my $head = post_head($host, length $create, chunked => $chunked);
        my $bytes = $chunked ? chunked($create, 20) : $create;
        $head =~ s/\r\n\r\n\z/\r\nConnection: close\r\n\r\n/;
        my $step = int(length($bytes) / 9) + 1;
        my $raw = trickle($head, [ $bytes =~ /(.{1,$step})/gs ], 0.4);

        like($raw // '', qr{^HTTP/1\.1 201 }, "$name: answered 201");
        my $req = $t->forwarded_once('global', $name);
        is_bytes($req->{body}, $create, "$name: the body went up exactly");
    }

    # a pause of 2 s: nginx closes the connection without an answer
    for my $body ([ 'valid', $create ], [ 'invalid', '{"destination":' ]) {
        my ($what, $b) = @$body;
        my $name = "$what body, 2 s pause ($host)";
        my $offset = $t->error_log_size;
        my $id = $t->next_test_id;
        my $raw = trickle(post_head($host, length($b) + 10, id => $id),
                          [ $b, 'x' x 10 ], 2);

        is($raw, '', "$name: closed without an answer");
        # nginx 1.22 says it in the access log only
        is(logged_status($id), 408, "$name: logged as 408");
        is_deeply([ map { $_->{line} } $t->sendgrid_log_lines(since => $offset,
                                                              all => 1) ],
                  [], "$name: nothing from the module");
        $t->nothing_upstream($name);
    }
}


# -- pipelined on one keep-alive connection -------------------------------------

# Requests written at once; each with the status and body the gateway
# answers, or up => 1 for those that go upstream (the mock's answer).
my $bad_json = '{"destination":"Segment",}';
my $patch = '{"label":"renamed"}';

my @pipeline = (
    { req => "GET $coll HTTP/1.1\r\nHost: localhost\r\n\r\n", up => 1,
      status => 200, method => 'GET', target => $coll, body => '' },
    { req => post_head('localhost', length '{"destination":"Segment"}')
             . '{"destination":"Segment"}',
      status => 400, answer => body_error('filters is required, '
                                          . 'properties is required') },
    { req => post_head('localhost', length $create) . $create, up => 1,
      status => 201, method => 'POST', target => $coll, body => $create },
    { req => "GET $coll HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
             . "\r\n{}",
      status => 400, answer => body_error('this request must not have a '
                                          . 'body') },
    { req => "PUT $coll HTTP/1.1\r\nHost: localhost\r\nContent-Length: 14\r\n"
             . "\r\nGET / HTTP/1.1",
      status => 405, answer => '{"errors":[{"message":"method not allowed",'
                               . '"field":null}]}' },
    { req => "PATCH $item HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Type: application/json\r\nContent-Length: "
             . length($patch) . "\r\n\r\n$patch", up => 1,
      status => 200, method => 'PATCH', target => $item, body => $patch },
    { req => "GET $coll/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
      status => 404, answer => '{"errors":[{"message":"resource not found",'
                               . '"field":null}]}' },
    { req => "POST $coll HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Type: text/plain\r\nContent-Length: "
             . length($create) . "\r\n\r\n$create",
      status => 415, answer => body_error('Content-Type must be '
                                          . 'application/json') },
    { req => post_head('localhost', 0, chunked => 1) . chunked($bad_json, 5),
      status => 400, answer => body_error(invalid_json_at(
                                   length $bad_json)) },
    { req => "DELETE $coll?ids=a1,b2 HTTP/1.1\r\nHost: localhost\r\n\r\n",
      up => 1, status => 204, method => 'DELETE',
      target => "$coll?ids=a1,b2", body => '' },
    { req => post_head('file.test', length $big) . $big, up => 1,
      status => 201, method => 'POST', target => $coll, body => $big },
    { req => "GET $item HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\n\r\n", up => 1,
      status => 200, method => 'GET', target => $item, body => '' },
);

{
    my @r = $t->pipelined(join '', map { $_->{req} } @pipeline);
    is(scalar @r, scalar @pipeline, 'pipelined: every request answered');

    for my $i (0 .. $#pipeline) {
        my $p = $pipeline[$i];
        my $r = $r[$i] // { status => 0, headers => {}, body => '' };
        is($r->{status}, $p->{status}, "pipelined $i: status $p->{status}");
        next if $p->{up};
        is_bytes($r->{body}, $p->{answer}, "pipelined $i: the gateway's answer");
        is_deeply($r->{headers}{connection}, [ 'keep-alive' ],
                  "pipelined $i: the connection kept")
            if $i < $#pipeline;
    }

    my @up = grep { $_->{up} } @pipeline;
    my @seen = $t->upstream('global');
    is_deeply([ map { "$_->{method} $_->{target}" } @seen ],
              [ map { "$_->{method} $_->{target}" } @up ],
              'pipelined: the valid requests went up once each, in order');
    for my $i (0 .. $#up) {
        is_bytes($seen[$i]{body} // '', $up[$i]{body},
                 "pipelined: $up[$i]{method} $up[$i]{target} went up exactly");
    }
}

# a request nginx cannot parse ends the connection: what follows it is
# never read, and never forwarded
{
    my @r = $t->pipelined("GET $coll HTTP/1.1\r\nHost: localhost\r\n\r\n"
                          . "GET /v3/marketing integrations HTTP/1.1\r\n"
                          . "Host: localhost\r\n\r\n"
                          . post_head('localhost', length $create) . $create);
    is_deeply([ map { $_->{status} } @r ], [ 200, 400 ],
              'malformed request line: answered, then the connection closed');
    is_deeply([ map { "$_->{method} $_->{target}" } $t->upstream('global') ],
              [ "GET $coll" ],
              'malformed request line: only the request before it went up');
}


# -- memory ---------------------------------------------------------------------

$t->memory_returned('client faults', 20, 256, sub {
    for my $host ('localhost', 'file.test') {
        my $s = $t->connect;
        SGTest::syswrite_all($s, post_head($host, length $big)
                                 . substr($big, 0, 300000));
        sleep 0.05;
        close $s;
    }
    $t->pipelined(join '', map { $_->{req} } @pipeline);
    $t->upstream('global');
});

is_deeply([ grep { index(SGTest::slurp($_), $write_key) >= 0 } $t->log_files ],
          [], 'no log shows the write_key');

$t->done_testing;
