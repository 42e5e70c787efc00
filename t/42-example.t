# nginx.conf.example as an operator would copy it: only its paths, its
# listen address, the upstream server addresses (the upstream{} names stay,
# so SNI and certificate verification use the real host names) and the read
# timeout are replaced.  The upstreams are local TLS mocks whose
# certificates come from a CA made here; upstreams presenting a certificate
# that does not verify receive nothing.

use strict;
use warnings;

use Test::More;
use SGTest qw(is_sendgrid_error header_pairs);
use JSON::PP;
use Time::HiRes qw(sleep);

my $t = SGTest->new;
my $dir = $t->dir;
my $pki = "$dir/pki";
mkdir $pki or die "$pki: $!";


# the certificates, with the openssl command line

sub openssl {
    my @args = @_;
    my $out = `openssl @args 2>&1`;
    die "openssl @args:\n$out" if $?;
    return $out;
}

my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
my $leaf_ext = '-addext basicConstraints=critical,CA:FALSE'
             . ' -addext keyUsage=critical,digitalSignature'
             . ' -addext extendedKeyUsage=serverAuth';

sub make_ca {
    my ($name, $cn) = @_;
    openssl("req -x509 -new $ec -keyout $pki/$name.key -out $pki/$name.crt"
            . " -days 3 -subj '/CN=$cn'"
            . ' -addext basicConstraints=critical,CA:TRUE'
            . ' -addext keyUsage=critical,keyCertSign,cRLSign');
}

my $serial = 1;

sub make_leaf {
    my ($name, $ca, $host) = @_;
    openssl("req -new $ec -keyout $pki/$name.key -out $pki/$name.csr"
            . " -subj '/CN=$host'");
    $t->write_file("pki/$name.ext",
                   "subjectAltName=DNS:$host\n"
                   . "basicConstraints=critical,CA:FALSE\n"
                   . "keyUsage=critical,digitalSignature\n"
                   . "extendedKeyUsage=serverAuth\n");
    openssl("x509 -req -in $pki/$name.csr -CA $pki/$ca.crt"
            . " -CAkey $pki/$ca.key -set_serial " . $serial++
            . " -days 3 -out $pki/$name.crt -extfile $pki/$name.ext");
}

sub make_self_signed {
    my ($name, $host) = @_;
    openssl("req -x509 -new $ec -keyout $pki/$name.key -out $pki/$name.crt"
            . " -days 3 -subj '/CN=$host' -addext subjectAltName=DNS:$host"
            . " $leaf_ext");
}

make_ca('ca', 'Gateway Test CA');
make_ca('other-ca', 'Another Test CA');
make_leaf('global', 'ca', 'api.sendgrid.com');
make_leaf('eu', 'ca', 'api.eu.sendgrid.com');
make_leaf('other-global', 'other-ca', 'api.sendgrid.com');
make_self_signed('self-eu', 'api.eu.sendgrid.com');

sub verifies {
    my ($crt) = @_;
    my $out = `openssl verify -CAfile $pki/ca.crt $pki/$crt.crt 2>&1`;
    return $? == 0;
}

ok(verifies('global'), 'fixture: the global certificate verifies');
ok(verifies('eu'), 'fixture: the EU certificate verifies');
ok(!verifies('other-global'), 'fixture: another CA\'s certificate does not');
ok(!verifies('self-eu'), 'fixture: the self-signed certificate does not');


# keys and upstreams

my %key = (global => 'SG.example-global-key.0123456789abcdefXYZ',
           eu     => 'SG.example-eu-key.0123456789abcdefXYZ',
           acme   => 'SG.example-acme-subuser-key.0123456789XYZ');
$t->key_file("keys/$_.key", "$key{$_}\n") for keys %key;

# the two real hosts, then impostors: a certificate of another CA, a
# self-signed one, and a valid certificate of the other host
my %mocks = (global => 'global', eu => 'eu', other => 'other-global',
             self => 'self-eu', misnamed => 'eu');
for my $m (sort keys %mocks) {
    $t->mock($m, cert => "$pki/$mocks{$m}.crt", key => "$pki/$mocks{$m}.key");
}


# the example, with its paths and addresses replaced

my $example = SGTest::slurp("$SGTest::TOP/nginx.conf.example");
ok(length $example, 'nginx.conf.example read');

sub replace {
    my ($text, $from, $to, $count) = @_;
    my $n = ($$text =~ s/$from/ref $to ? $to->() : $to/ge);
    die "nginx.conf.example: expected $count of $from, found " . ($n || 0)
        if ($n || 0) != $count;
}

sub config_for {
    my ($global, $eu) = @_;
    my $text = $example;
    my $module = $t->module;

    replace(\$text, qr/^load_module \S+;$/m,
            $module ? "load_module $module;" : '', 1);
    replace(\$text, qr/^user www-data;$/m,
            $> == 0 ? 'user root root;' : '', 1);
    replace(\$text, qr{^pid /run/nginx\.pid;$}m, "pid $dir/logs/nginx.pid;",
            1);
    replace(\$text, qr{error_log /var/log/nginx/error\.log },
            "error_log $dir/logs/error.log ", 1);
    replace(\$text, qr{/var/log/nginx/sendgrid-access\.log},
            "$dir/logs/access.log", 1);
    replace(\$text, qr{^(\s*sendgrid_[^#\n]*?)/etc/nginx/sendgrid/}m,
            sub { "$1$dir/keys/" }, 3);
    replace(\$text, qr{/etc/ssl/certs/ca-certificates\.crt},
            "$pki/ca.crt", 1);
    replace(\$text, qr/listen 127\.0\.0\.1:8080;/,
            'listen 127.0.0.1:' . $t->port . ';', 1);
    replace(\$text, qr/server api\.sendgrid\.com:443;/,
            "server 127.0.0.1:%%PORT_\U$global\E%%;", 1);
    replace(\$text, qr/server api\.eu\.sendgrid\.com:443;/,
            "server 127.0.0.1:%%PORT_\U$eu\E%%;", 1);
    replace(\$text, qr/proxy_read_timeout 30s;/, 'proxy_read_timeout 2s;', 1);
    replace(\$text, qr/^http \{$/m, "http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;", 1);

    die "a real host is left in the configuration"
        if $text =~ /^\s*server\s+api\./m;

    return $text;
}

{
    (my $text = config_for('global', 'eu')) =~ s/^\s*#.*\n//mg;
    unlike($text, qr{/etc/|/var/|/run/|/usr/}, 'no system path left');
    like($text, qr/upstream api\.sendgrid\.com \{/,
         'the upstream{} names are kept');
}

$t->start(config_for('global', 'eu'), whole => 1);


my $post = '{"destination":"Segment","filters":{"email_events":["open"]},'
         . '"properties":{"write_key":"a123456","destination_region":"EU"},'
         . '"label":"from the example"}';

# nginx's own errors reach the client as a single SendGrid-shaped error
sub json_error {
    my ($r, $status, $name, $message) = @_;
    is_sendgrid_error($r, $status, $name, count => 1, field => 1,
                      message => $message);
}


# a global request: the global host, the global key

my $r = $t->request(GET => '/v3/marketing/integrations',
                    headers => [Authorization => 'Bearer SG.client-key']);
is($r->{status}, 200, 'global: answered');
my $u = $t->forwarded_once('global', 'global');
is_deeply([ header_pairs($u, 'host') ], [['Host', 'api.sendgrid.com']],
          'global: Host api.sendgrid.com');
is_deeply([ header_pairs($u, 'authorization') ],
          [['Authorization', "Bearer $key{global}"]], 'global: global key');
is_deeply([ header_pairs($u, 'on-behalf-of') ], [], 'global: no on-behalf-of');
is_deeply([ header_pairs($u, 'connection') ], [], 'global: keepalive upstream');
is($u->{version}, 'HTTP/1.1', 'global: HTTP/1.1 upstream');

# an EU subuser: the EU host, the EU parent key, on-behalf-of
for my $sub (qw(eu-team EMEA-berlin acme-emea)) {
    $r = $t->request(POST => '/v3/marketing/integrations', body => $post,
                     headers => ['Content-Type' => 'application/json',
                                 'on-behalf-of' => $sub]);
    is($r->{status}, 201, "EU subuser $sub: created");
    $u = $t->forwarded_once('eu', "EU subuser $sub");
    is_deeply([ header_pairs($u, 'host') ], [['Host', 'api.eu.sendgrid.com']],
              "EU subuser $sub: Host api.eu.sendgrid.com");
    is_deeply([ header_pairs($u, 'authorization') ],
              [['Authorization', "Bearer $key{eu}"]],
              "EU subuser $sub: EU parent key");
    is_deeply([ header_pairs($u, 'on-behalf-of') ], [['on-behalf-of', $sub]],
              "EU subuser $sub: on-behalf-of");
    is($u->{body}, $post, "EU subuser $sub: body as sent");
}

# a subuser with its own key: no on-behalf-of
$r = $t->request(GET => '/v3/marketing/integrations/5a1234',
                 headers => ['on-behalf-of' => 'acme']);
is($r->{status}, 200, 'subuser key: answered');
$u = $t->forwarded_once('global', 'subuser key');
is_deeply([ header_pairs($u, 'authorization') ],
          [['Authorization', "Bearer $key{acme}"]], 'subuser key: its key');
is_deeply([ header_pairs($u, 'on-behalf-of') ], [],
          'subuser key: no on-behalf-of');

# an unlisted subuser: global, parent key, on-behalf-of
$r = $t->request(DELETE => '/v3/marketing/integrations?ids=a,b',
                 headers => ['on-behalf-of' => 'someone']);
is($r->{status}, 204, 'unlisted subuser: deleted');
$u = $t->forwarded_once('global', 'unlisted subuser');
is_deeply([ header_pairs($u, 'authorization') ],
          [['Authorization', "Bearer $key{global}"]],
          'unlisted subuser: global key');
is_deeply([ header_pairs($u, 'on-behalf-of') ], [['on-behalf-of', 'someone']],
          'unlisted subuser: on-behalf-of');


# nginx's own errors, as JSON

$r = $t->request(GET => '/v3/marketing/integrations/a/b');
json_error($r, 404, 'unknown route', qr/not found/);

$r = $t->request(GET => '/index.html');
json_error($r, 404, 'another location', qr/not found/);

my $big = '{"destination":"Segment","filters":{"email_events":["open"]},'
        . '"properties":{"write_key":"a123456","destination_region":"US"},'
        . '"label":"' . ('x' x 70000) . '"}';
$r = $t->request(POST => '/v3/marketing/integrations', body => $big,
                 headers => ['Content-Type' => 'application/json']);
json_error($r, 413, 'body over client_max_body_size', qr/too large/);

$t->nothing_upstream('errors');

$t->upstream_response('global', status => 200, delay_ms => 3000,
                      headers => [['Content-Type', 'application/json']],
                      body => '{"result":[]}');
$r = $t->request(GET => '/v3/marketing/integrations');
json_error($r, 504, 'upstream too slow', qr/in time/);
$t->upstream_response('global');
$t->forwarded_once('global', 'upstream too slow');


# the access log

# a line is written once its response is sent: wait for the last one
my ($created, $slow);
for (1 .. 200) {
    my @access = map { JSON::PP->new->decode($_) }
                 split /\n/, SGTest::slurp("$dir/logs/access.log");
    ($created) = grep { $_->{subuser} eq 'eu-team' } @access;
    ($slow) = grep { $_->{status} == 504 } @access;
    last if $slow;
    sleep 0.05;
}
ok($created, 'access log: the EU create is logged');
is_deeply([@{$created // {}}{qw(status operation region upstream_host
                                upstream_status error)}],
          [201, 'create', 'eu', 'api.eu.sendgrid.com', '201', ''],
          'access log: status, operation, region, host, no error');
ok($slow, 'access log: the 504 is logged');
my $slow_error = eval { JSON::PP->new->decode($slow->{error}) };
is_deeply([@{$slow_error // {}}{qw(source status operation region)}],
          ['gateway', 504, 'list', 'global'],
          'access log: $sendgrid_error of the 504');


# impostors: the upstream{} blocks point at them; reload

# An old worker no longer takes requests once it has closed its listening
# sockets: requests sent after that meet the new configuration.
sub reload_with {
    my ($text, $name) = @_;
    my ($rc, $out) = $t->test_config($text, whole => 1);
    is($rc, 0, "$name: nginx -t") or diag($out);
    ok($t->reload(wait => 'listening'), "$name: reloaded");
}

my $log_before = length $t->error_log;

reload_with(config_for('other', 'self'), 'impostors');

$r = $t->request(GET => '/v3/marketing/integrations');
json_error($r, 502, 'another CA', qr/could not be reached/);
$r = $t->request(POST => '/v3/marketing/integrations', body => $post,
                 headers => ['Content-Type' => 'application/json',
                             'on-behalf-of' => 'eu-team']);
json_error($r, 502, 'self-signed', qr/could not be reached/);

$t->nothing_upstream('impostors');

my $log = substr($t->error_log, $log_before);
my @verify = $log =~ /(upstream SSL certificate verify error: [^,]*)/g;
is(scalar @verify, 2, 'impostors: both refused by certificate verification')
    or diag($log);

# a valid certificate of the EU host, presented for the global one
$log_before = length $t->error_log;
reload_with(config_for('misnamed', 'eu'), 'misnamed');

$r = $t->request(GET => '/v3/marketing/integrations');
json_error($r, 502, 'certificate of another host', qr/could not be reached/);
$t->nothing_upstream('misnamed');
like(substr($t->error_log, $log_before),
     qr/upstream SSL certificate does not match "api\.sendgrid\.com"/,
     'misnamed: refused for its name');

# the real EU host still serves
$r = $t->request(GET => '/v3/marketing/integrations',
                 headers => ['on-behalf-of' => 'eu-x']);
is($r->{status}, 200, 'after the impostors: the EU host answers');
$u = $t->forwarded_once('eu', 'after the impostors');
is_deeply([ header_pairs($u, 'authorization') ],
          [['Authorization', "Bearer $key{eu}"]],
          'after the impostors: EU key');

$t->secret('SG.client-key');

$t->done_testing;
