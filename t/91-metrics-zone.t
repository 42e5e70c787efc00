# The metrics zone: nginx -t refuses what cannot work; a zone too small
# for the counters is a warning and no metrics, and requests are answered
# as ever; a reload keeps the counts, unless it changes the zone's size;
# sendgrid_metrics_count off leaves a location out.

use strict;
use warnings;

use Test::More;
use SGTest;
use Time::HiRes qw(sleep);

my $t = SGTest->new;

$t->key_file('global.key', "SG.metrics-zone-key.0123456789\n");

my $C = '/v3/marketing/integrations';
my $P = 'sendgrid_integrations_';


# nginx -t

my @refused = (
    [ 'a zone smaller than 8 pages', 'sendgrid_metrics_zone m 16k;',
      'zone "m" is too small' ],
    [ 'a size that is none', 'sendgrid_metrics_zone m big;',
      'invalid zone size "big"' ],
    [ 'a second zone',
      'sendgrid_metrics_zone m 1m; sendgrid_metrics_zone n 1m;',
      '"sendgrid_metrics_zone" directive is duplicate' ],
    [ 'a zone in a server',
      'server { listen 127.0.0.1:%%PORT%%; sendgrid_metrics_zone m 1m; }',
      '"sendgrid_metrics_zone" directive is not allowed here' ],
    [ 'a zone of another module\'s name',
      'limit_req_zone $binary_remote_addr zone=m:1m rate=1r/s; '
      . 'sendgrid_metrics_zone m 1m;',
      'the shared memory zone "m" is already declared for a different use' ],
    [ 'the endpoint in a server',
      'sendgrid_metrics_zone m 1m; server { listen 127.0.0.1:%%PORT%%; '
      . 'sendgrid_metrics m; }',
      '"sendgrid_metrics" directive is not allowed here' ],
);

$t->config_fails(@$_) for @refused;

{
    my ($rc, $out) = $t->test_config(
        'sendgrid_metrics_zone m 1m; server { listen 127.0.0.1:%%PORT%%; '
        . 'location /metrics { sendgrid_metrics other; } }');
    isnt($rc, 0, 'an endpoint of a zone never declared: nginx -t fails');
    like($out, qr/\[emerg\] (?:\d+#\d+: )?zero size shared memory zone "other"/,
         'an endpoint of a zone never declared: said so');
}


# a zone too small for the counters: a warning, no metrics, requests served

my $servers = SGTest::gateway_server('localhost', <<'CONF',
    location = /metrics { sendgrid_metrics sgm; }
CONF
                                     location => <<'CONF')
    sendgrid_api_key_file %%DIR%%/global.key;
CONF
    . SGTest::gateway_server('off.test', 'sendgrid_metrics_count off;',
                             location => <<'CONF');
    sendgrid_api_key_file %%DIR%%/global.key;
CONF

$t->start("sendgrid_metrics_zone sgm 64k;\n$servers");

my $too_small = 'sendgrid_metrics_zone "sgm" is too small for the metrics, '
              . 'which need ';
like($t->error_log, qr/\[warn\] .*\Q$too_small\E\d+k: they are off/,
     'a zone too small: a warning');

my $r = $t->request(GET => $C);
is($r->{status}, 200, 'a zone too small: a request is forwarded');
$t->forwarded_once('global', 'a zone too small');

$r = $t->request(GET => "$C/");
is($r->{status}, 404, 'a zone too small: a refusal is answered');

$r = $t->request(GET => '/metrics');
is($r->{status}, 503, 'a zone too small: the endpoint answers 503');
unlike($r->{body}, qr/$P/, 'a zone too small: no metrics');


# a reload to a zone large enough: metrics from then on

sub reload_with {
    my ($zone) = @_;
    my ($rc, $out) = $t->test_config("sendgrid_metrics_zone $zone;\n$servers");
    is($rc, 0, "sendgrid_metrics_zone $zone: nginx -t passes") or diag $out;
    ok($t->reload(wait => 1), "sendgrid_metrics_zone $zone: reloaded");
}

# the counts of list requests once they reach want (the log phase comes
# after the answer), or what they are after 10 seconds
sub lists {
    my ($want) = @_;
    my ($r, $s);
    for (1 .. 100) {
        ($r, $s) = $t->metrics('/metrics');
        last if ($s->{"${P}requests_total{operation=\"list\",region=\"global\","
                      . 'source="upstream",class="2xx",code="200"}'} // 0)
                >= $want;
        sleep 0.1;
    }
    is($r->{status}, 200, 'the endpoint answers');
    return $s->{"${P}requests_total{operation=\"list\",region=\"global\","
                . 'source="upstream",class="2xx",code="200"}'} // 0;
}

reload_with('sgm 1m');

$r = $t->request(GET => '/metrics');
is($r->{status}, 200, 'a zone large enough: the endpoint answers');

$t->request(GET => $C) for 1 .. 3;
$r = $t->request(GET => $C, headers => [Host => 'off.test']);
is($r->{status}, 200, 'sendgrid_metrics_count off: forwarded');
$t->upstream('global');

is(lists(3), 3, 'three list requests counted, the one of off.test not');

reload_with('sgm 1m');
is(lists(3), 3, 'a reload with the same zone keeps the counts');

$t->request(GET => $C);
$t->upstream('global');
is(lists(4), 4, 'and counting goes on');

reload_with('sgm 2m');
my ($res, $s) = $t->metrics('/metrics');
is_deeply([ grep { /^${P}requests_total/ } keys %$s ], [],
          'a reload that changes the zone\'s size starts anew');

$t->done_testing;
