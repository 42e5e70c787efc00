# The five operations reach the upstream byte for byte, with the gateway's
# key and none of the client's credentials.

use strict;
use warnings;

use Test::More;
use SGTest;

my $t = SGTest->new;
my $key = 'SG.global-test-key.0123456789abcdefABCDEF';
$t->key_file('global.key', "  $key \r\n\n");

# A server that closes every connection without an answer: the first
# server of the retry_* blocks, so that nginx sends each request there,
# then again, from the start of its buffers, to the global mock.
my $closer = SGTest::free_port();

(my $retry = <<'CONF') =~ s/%%CLOSER%%/$closer/g;
    server {
        listen 127.0.0.1:%%CLOSER%%;
        return 444;
    }

    upstream retry_get { server 127.0.0.1:%%CLOSER%%; server 127.0.0.1:%%PORT_GLOBAL%%; }
    upstream retry_post { server 127.0.0.1:%%CLOSER%%; server 127.0.0.1:%%PORT_GLOBAL%%; }
    upstream retry_setbody { server 127.0.0.1:%%CLOSER%%; server 127.0.0.1:%%PORT_GLOBAL%%; }
CONF

my $retried = <<'CONF';
    sendgrid_api_key_file %%DIR%%/global.key;
    proxy_next_upstream error timeout invalid_header non_idempotent;
    add_header X-Upstream-Addr "$upstream_addr" always;
CONF

$t->start($retry
          . SGTest::gateway_server(undef, '', location => <<'CONF')
    sendgrid_api_key_file %%DIR%%/global.key;
    add_header X-Operation "$sendgrid_operation" always;
    add_header X-Upstream "$sendgrid_upstream_host" always;
    add_header X-Region "$sendgrid_region" always;
CONF
          . SGTest::gateway_server('retry-get.test',
                                   'sendgrid_upstream_host global retry_get;',
                                   location => $retried)
          . SGTest::gateway_server('retry-post.test',
                                   'sendgrid_upstream_host global retry_post;',
                                   location => $retried)
          . SGTest::gateway_server('retry-setbody.test',
                                   'sendgrid_upstream_host global '
                                   . 'retry_setbody;',
                                   location => $retried
                                   . "proxy_set_body '{\"set\":1}';\n"));

my $post = '{"destination":"Segment","filters":{"email_events":["open","click"]},'
         . '"properties":{"write_key":"a123456","destination_region":"US"},'
         . '"label":"caf\u00e9 \u2603"}';
my $patch = "{ \"label\" : \"new label\" ,\n \"filters\":{\"email_events\":[]} }";

my @cases = (
    [ list   => 'GET', '/v3/marketing/integrations', undef, 200 ],
    [ create => 'POST', '/v3/marketing/integrations', $post, 201 ],
    [ delete => 'DELETE', '/v3/marketing/integrations?ids=5a1234', undef, 204 ],
    [ delete => 'DELETE', '/v3/marketing/integrations?ids=a,b%2Cc&ids=d-_9', undef, 204 ],
    [ get    => 'GET', '/v3/marketing/integrations/5a1234', undef, 200 ],
    [ update => 'PATCH', '/v3/marketing/integrations/' . ('Z' x 128), $patch, 200 ],
);

for my $case (@cases) {
    my ($op, $method, $target, $body, $status) = @$case;

    my @headers = ('User-Agent' => 'team-a/1.0', 'X-Trace' => "trace-$op",
                   'Authorization' => 'Bearer SG.client-own-key');
    push @headers, 'Content-Type' => 'application/json; charset=utf-8'
        if defined $body;

    my $r = $t->request($method, $target, headers => \@headers, body => $body);

    is($r->{status}, $status, "$op: client gets the upstream's status");
    is($r->{headers}{'x-operation'}[0], $op, "$op: \$sendgrid_operation");
    is($r->{headers}{'x-upstream'}[0], 'sendgrid_global',
       "$op: \$sendgrid_upstream_host");
    is($r->{headers}{'x-region'}[0], 'global', "$op: \$sendgrid_region");

    my $u = $t->forwarded_once('global', $op);

    is($u->{method}, $method, "$op: method");
    is($u->{target}, $target, "$op: target byte for byte");
    is($u->{body}, $body // '', "$op: body byte for byte");

    my @expected = $t->proxy_first($body);
    push @expected, ['User-Agent', 'team-a/1.0'], ['X-Trace', "trace-$op"];
    push @expected, ['Content-Type', 'application/json; charset=utf-8']
        if defined $body;
    push @expected, ['Authorization', "Bearer $key"];

    is_deeply($u->{headers}, \@expected, "$op: every header upstream");
}

# Sent again after the first server closed without an answer: the same
# bytes, the key and on-behalf-of once each, then the empty line and the
# body (the client's, or proxy_set_body's after the head in one buffer).
for my $case ([ 'retry-get.test', 'GET', undef, [] ],
              [ 'retry-post.test', 'POST', $post,
                [ 'on-behalf-of' => 'team-b' ] ],
              [ 'retry-setbody.test', 'POST', $post, [], '{"set":1}' ])
{
    my ($server, $method, $body, $obo, $set) = @$case;
    my $what = "$server, $method";
    my ($upstream) = $server =~ /^(retry-\w+)/;
    $upstream =~ tr/-/_/;

    my @headers = (Host => $server, 'X-Trace' => 'retried', @$obo);
    push @headers, 'Content-Type' => 'application/json' if defined $body;

    my $r = $t->request($method, '/v3/marketing/integrations',
                        headers => \@headers, body => $body);

    is($r->{status}, defined $body ? 201 : 200, "$what: answered");
    is($r->{headers}{'x-upstream-addr'}[0],
       "127.0.0.1:$closer, 127.0.0.1:" . $t->mock('global')->{port},
       "$what: sent to the closing server first, then again");

    my $u = $t->forwarded_once('global', $what);
    my $sent = $set // $body;

    my @expected = (['Host', $upstream]);
    push @expected, ['Connection', 'close'] if $t->nginx_version < 1029007;
    push @expected, ['Content-Length', length $sent] if defined $sent;
    push @expected, ['X-Trace', 'retried'];
    push @expected, ['Content-Type', 'application/json'] if defined $body;
    push @expected, ['Authorization', "Bearer $key"];
    push @expected, ['on-behalf-of', $obo->[1]] if @$obo;

    is_deeply($u->{headers}, \@expected, "$what: every header upstream");
    is($u->{body}, $sent // '', "$what: body byte for byte");
}

# the upstream's answer reaches the client unchanged
my $r = $t->request(GET => '/v3/marketing/integrations/5a1234');
my $item = SGTest::json_body($r);
is($item->{integration_id}, '5a1234', 'upstream body relayed');
is($r->{headers}{'content-type'}[0], 'application/json', 'upstream type relayed');
$t->upstream('global');

# nothing reached the EU upstream
is(scalar $t->upstream('eu'), 0, 'EU upstream saw nothing');

$t->secret('SG.client-own-key');

$t->done_testing;
