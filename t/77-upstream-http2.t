# nginx 1.29.4 and newer can speak HTTP/2 to an upstream
# (proxy_http_version 2), building the upstream request as HPACK-coded
# frames instead of header lines.  The gateway adds its key to HTTP/1.x
# requests only, so nginx -t refuses a gateway location that would speak
# HTTP/2 upstream; other locations keep it, and a gateway location of the
# same server with HTTP/1.1 forwards with its key.  The HTTP/2 upstream of
# the other location is a server of the same nginx (cleartext, prior
# knowledge) that passes what it received on to the recording mock.

use strict;
use warnings;

use Test::More;
use SGTest qw(create_body header_values);

my $t = SGTest->new;

my $key = 'SG.upstream-h2-key.0123456789abcdefABCDEF';
$t->key_file('global.key', "$key\n");

my ($rc, $out) = $t->test_config(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { proxy_http_version 2; proxy_pass http://127.0.0.1:1; }
    }
CONF
plan skip_all => 'this nginx cannot speak HTTP/2 to upstreams '
                 . '(proxy_http_version 2)'
    if $rc;

my $refused = 'sendgrid_integrations sends its key only over HTTP/1.x: use '
              . '"proxy_http_version 1.1" in this location';

$t->config_fails('proxy_http_version 2 in the gateway location',
                 SGTest::gateway_server(undef, '', location => <<'CONF'),
    sendgrid_api_key_file %%DIR%%/global.key;
    proxy_http_version 2;
CONF
                 $refused);

$t->config_fails('proxy_http_version 2 inherited from the server',
                 SGTest::gateway_server(undef, 'proxy_http_version 2;',
                                        location => <<'CONF'),
    sendgrid_api_key_file %%DIR%%/global.key;
CONF
                 $refused);

my $h2_port = SGTest::free_port();

$t->start(<<"CONF" . SGTest::gateway_server(undef, <<'SERVER', location => <<'LOCATION'));
    upstream h2_hop { server 127.0.0.1:$h2_port; }

    server {
        listen 127.0.0.1:$h2_port;
        http2 on;
        location / {
            add_header X-Hop-Protocol \$server_protocol always;
            proxy_set_header Host sendgrid_global;
            proxy_pass http://sendgrid_global;
        }
    }
CONF
        proxy_http_version 2;
        location /elsewhere/ {
            proxy_pass http://h2_hop;
        }
SERVER
    sendgrid_api_key_file %%DIR%%/global.key;
    proxy_http_version 1.1;
LOCATION

my $r = $t->request(GET => '/elsewhere/x');
is($r->{status}, 200, 'another location: forwarded');
is_deeply($r->{headers}{'x-hop-protocol'}, ['HTTP/2.0'],
          'another location: over HTTP/2');
my $u = $t->forwarded_once('global', 'another location');
is_deeply([ header_values($u, 'Authorization') ], [],
          'another location: no key');

my $post = create_body(write_key => 'a123456');
$r = $t->request(POST => '/v3/marketing/integrations', body => $post,
                 headers => [ 'Content-Type' => 'application/json' ]);
is($r->{status}, 201, 'the gateway, over HTTP/1.1: forwarded');
$u = $t->forwarded_once('global', 'the gateway, over HTTP/1.1');
is($u->{version}, 'HTTP/1.1', 'the gateway: HTTP/1.1 upstream');
is_deeply([ header_values($u, 'Authorization') ], ["Bearer $key"],
          'the gateway: the key once');

$t->done_testing;
