# HTTP/3 over QUIC, on an nginx built with the ngx_http_v3_module (1.25 and
# newer; with OpenSSL 3.0 nginx uses its own QUIC compatibility layer):
# the configuration passes nginx -t, nginx starts, and the gateway answers
# over HTTP/3.  The client is ngtcp2's example client from Debian
# (gtlsclient), which sends no header of its own choosing but user-agent
# and content-length: a create it sends is refused for its Content-Type, so
# bodies are checked through a report_only location, where the rules are
# logged and the request forwarded.

use strict;
use warnings;

use Test::More;
use SGTest qw(create_body body_error is_bytes);

my $t = SGTest->new;

plan skip_all => 'this nginx has no HTTP/3 (ngx_http_v3_module)'
    unless $t->has_module('http_v3');
plan skip_all => "no HTTP/3 client ($SGTest::H3CLIENT, ngtcp2-client)"
    unless -x $SGTest::H3CLIENT;

my $key = 'SG.http3-test-key.0123456789abcdefABCDEF';
$t->key_file('global.key', "$key\n");

my %port = (on => SGTest::free_port(), report_only => SGTest::free_port());

sub quic_server {
    my ($mode) = @_;
    my $p = $port{$mode};
    return SGTest::gateway_server(undef, '', mode => $mode,
        listen => "listen 127.0.0.1:$p quic;\nlisten 127.0.0.1:$p ssl;\n"
                  . $t->tls_certificate,
        location => 'sendgrid_api_key_file %%DIR%%/global.key;'
                    . 'add_header Alt-Svc \'h3=":' . $p . '"\' always;');
}

my $conf = SGTest::gateway_server(undef, '') . quic_server('on')
           . quic_server('report_only');

my ($rc, $out) = $t->test_config($conf);
is($rc, 0, 'nginx -t: a quic listener with the gateway passes')
    or diag($out);

$t->start($conf);
ok(1, 'nginx started with a quic listener');

my $C = '/v3/marketing/integrations';
my $UA = ['user-agent', 'nghttp3/ngtcp2 client'];

sub h3 {
    my ($mode, $method, $target, $body) = @_;
    my $r = $t->h3(port => $port{$mode}, method => $method,
                   target => $target, body => $body);
    ok($r, "$mode $method $target: an HTTP/3 answer")
        or diag($t->h3_output);
    return $r // { status => 0, headers => {}, body => '' };
}

# the proxy's own headers, the client's, then the key
sub upstream_headers {
    my ($body) = @_;
    my @h = ($t->proxy_first($body), $UA);
    return [ @h, ['Authorization', "Bearer $key"] ];
}


# forwarded: list, get, delete
for my $case ([ GET => $C, 200 ], [ GET => "$C/5a1234", 200 ],
              [ DELETE => "$C?ids=a,b", 204 ])
{
    my ($method, $target, $status) = @$case;
    my $r = h3(on => $method, $target);
    is($r->{status}, $status, "$method $target: forwarded, $status");
    my $u = $t->forwarded_once('global', "$method $target");
    is("$u->{method} $u->{target}", "$method $target",
       "$method $target: method and target upstream");
    is_deeply($u->{headers}, upstream_headers(),
              "$method $target: the key once, last");
}

# refused by the gateway, nothing upstream
{
    my $r = h3(on => GET => "$C/a/../b");
    $t->is_refused($r, 404,
                   '{"errors":[{"message":"resource not found","field":null}]}',
                   'a non-canonical path');

    $r = h3(on => PUT => $C);
    $t->is_refused($r, 405,
                   '{"errors":[{"message":"method not allowed","field":null}]}',
                   'PUT');
    is_deeply($r->{headers}{allow}, ['GET, POST, DELETE'], 'PUT: Allow');

    $r = h3(on => POST => $C, create_body(write_key => 'a123456'));
    $t->is_refused($r, 415,
                   body_error('Content-Type must be application/json'),
                   'a create without Content-Type');

    $r = h3(on => GET => $C, '{}');
    $t->is_refused($r, 400, body_error('this request must not have a body'),
                   'a GET with a body');
}

# report_only: bodies read over QUIC are validated, logged and forwarded
# byte for byte
for my $case (
    [ 'a valid create', create_body(write_key => 'a123456'),
      [ 415, 'Content-Type must be application/json' ] ],
    [ 'an invalid create',
      create_body(write_key => 'a123456', destination => '"Other"'),
      [ 415, 'Content-Type must be application/json' ],
      [ 400, 'destination must be Segment' ] ],
    [ 'a 200 KB create',
      create_body(write_key => 'a123456', label => '"' . 'y' x 200_000 . '"'),
      [ 415, 'Content-Type must be application/json' ] ])
{
    my ($name, $body, @logged) = @$case;
    my $offset = $t->error_log_size;

    my $r = h3(report_only => POST => $C, $body);
    is($r->{status}, 201, "report_only, $name: forwarded");
    my $u = $t->forwarded_once('global', "report_only, $name");
    is_bytes($u->{body}, $body, "report_only, $name: body byte for byte");
    is_deeply($u->{headers}, upstream_headers($body),
              "report_only, $name: the key once, last");

    is_deeply([ map { [ $_->{obj}{status}, $_->{obj}{errors}[0]{message},
                        $_->{obj}{report_only} ? 1 : 0 ] }
                $t->sendgrid_log_lines(since => $offset) ],
              [ map { [ @$_, 1 ] } @logged ],
              "report_only, $name: the rules logged");
}

$t->done_testing;
