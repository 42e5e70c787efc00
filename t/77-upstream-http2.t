# nginx 1.29.4 and newer can speak HTTP/2 to an upstream
# (proxy_http_version 2, ngx_http_proxy_v2_module), which builds the
# upstream request as HPACK-coded frames instead of header lines.  The
# gateway's key must reach such an upstream once, and the client's
# credentials never.  The HTTP/2 upstream here is a server of the same
# nginx (cleartext, prior knowledge) that passes what it received on to
# the recording mock over HTTP/1.x.

use strict;
use warnings;

use Test::More;
use SGTest qw(create_body is_bytes);

my $t = SGTest->new;

my $key = 'SG.upstream-h2-key.0123456789abcdefABCDEF';
my $client_key = 'SG.client-own-upstream-h2.000000';
$t->key_file('global.key', "$key\n");
$t->secret($client_key);

my $h2_port = SGTest::free_port();

my ($rc, $out) = $t->test_config(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { proxy_http_version 2; proxy_pass http://127.0.0.1:1; }
    }
CONF
plan skip_all => 'this nginx cannot speak HTTP/2 to upstreams '
                 . '(proxy_http_version 2)'
    if $rc;

# the HTTP/2 hop in front of the mock: the gateway's upstream host
my $conf = <<"CONF";
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

$t->start($conf . SGTest::gateway_server(undef, '', location => <<'CONF'));
    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_upstream_host global h2_hop;
    proxy_http_version 2;
CONF

my $C = '/v3/marketing/integrations';
my $post = create_body(write_key => 'a123456');

for my $case ([ list => GET => $C, undef, 200 ],
              [ create => POST => $C, $post, 201 ],
              [ update => PATCH => "$C/abc", '{"label":"x"}', 200 ],
              [ delete => DELETE => "$C?ids=a", undef, 204 ])
{
    my ($op, $method, $target, $body, $status) = @$case;
    my $r = $t->request($method, $target,
                        headers => [ 'Authorization' => "Bearer $client_key",
                                     'on-behalf-of' => 'acme',
                                     'X-Trace' => $op,
                                     defined $body
                                     ? ('Content-Type' => 'application/json')
                                     : () ],
                        body => $body);
    is($r->{status}, $status, "$op over an HTTP/2 upstream: $status");
    is_deeply($r->{headers}{'x-hop-protocol'}, ['HTTP/2.0'],
              "$op: the upstream was spoken to in HTTP/2");

    my $u = $t->forwarded_once('global', $op);
    is("$u->{method} $u->{target}", "$method $target",
       "$op: method and target");
    is_bytes($u->{body}, $body // '', "$op: body byte for byte");
    is_deeply([ SGTest::header_values($u, 'authorization') ],
              ["Bearer $key"], "$op: the key once, the client's never");
    is_deeply([ SGTest::header_values($u, 'on-behalf-of') ], ['acme'],
              "$op: the gateway's on-behalf-of once");
    is_deeply([ SGTest::header_values($u, 'x-trace') ], [$op],
              "$op: the client's other headers");
}

$t->done_testing;
