# Configuration: nginx -t refuses bad key files and bad directive values
# with a message naming the file or the value, accepts a complete good
# configuration, resolves relative key paths against the configuration
# directory, and a running gateway sends the trimmed key.

use strict;
use warnings;

use Test::More;
use SGTest;

my $t = SGTest->new;
my $dir = $t->dir;
my $conf = "$dir/nginx.conf";

$t->key_file('good.key', "SG.good-config-key.0123\n");
$t->key_file('eu.key', "SG.good-eu-key.4567\n");
$t->key_file('sub.key', "SG.good-subuser-key.89\n");

# bad key files; key_file() registers whatever is not blank as a secret,
# so none of these contents may show in a log
my @bad_keys = (
    [ 'empty.key', '', 'is empty' ],
    [ 'spaces.key', "   ", 'is empty' ],
    [ 'blank.key', " \t\r\n \n\r\n", 'is empty' ],
    [ 'space.key', "SG.secret-part one\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'tab.key', "SG.secret-part\tone\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'crlf-inside.key', "SG.secret-part\r\nSG.second-line\r\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'ctrl.key', "SG.secret\x01part\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'nul.key', "SG.secret-part\x00\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'del.key', "SG.secret-part\x7f\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'vtab.key', "SG.secret-part\x0b\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'utf8.key', "SG.secret-caf\xc3\xa9\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'latin1.key', "SG.secret-caf\xe9\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'bom.key', "\xef\xbb\xbfSG.secret-bom\n",
      'contains whitespace, control or non-ASCII bytes' ],
    [ 'big.key', 'SG.' . 'x' x 4094, 'is too large' ],
    [ 'big-padded.key', 'SG.secret-padded' . ' ' x 4081, 'is too large' ],
);

for my $k (@bad_keys) {
    my ($name, $content, $error) = @$k;
    $t->key_file($name, $content);
}

# a file of exactly 4096 bytes is still a key file
$t->key_file('4096.key', 'SG.' . 'y' x 4093);
is(-s "$dir/4096.key", 4096, 'the 4096-byte key file is 4096 bytes');
is(-s "$dir/big.key", 4097, 'the large key file is 4097 bytes');
is(-s "$dir/big-padded.key", 4097, 'the padded key file is 4097 bytes');

mkdir "$dir/dir.key" or die "mkdir: $!";

sub fails_with {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return $t->config_fails(@_);
}

sub passes {
    my ($what, $http) = @_;

    my ($rc, $out) = $t->test_config($http);

    is($rc, 0, "$what: nginx -t passes") or diag $out;
    like($out, qr/configuration file \Q$conf\E test is successful/,
         "$what: nginx says so");
    unlike($out, qr/\[(emerg|alert|crit|error|warn)\]/,
           "$what: no complaint") or diag $out;
}


# key files, through sendgrid_api_key_file at each level and as a
# subuser's KEY_FILE
fails_with('missing key file', "sendgrid_api_key_file $dir/missing.key;",
           qq{cannot open API key file "$dir/missing.key" }
           . '(2: No such file or directory)');

fails_with('a directory as key file', "sendgrid_api_key_file $dir/dir.key;",
           qq{cannot read API key file "$dir/dir.key" (21: Is a directory)});

SKIP: {
    skip 'running as root: a file with mode 000 is readable all the same '
         . '(the directory case above covers an unreadable path)', 3
        if $> == 0;

    $t->write_file('noperm.key', "SG.no-permission\n");
    chmod 0000, "$dir/noperm.key";
    fails_with('a key file with mode 000',
               "sendgrid_api_key_file $dir/noperm.key;",
               qq{cannot open API key file "$dir/noperm.key" }
               . '(13: Permission denied)');
}

for my $k (@bad_keys) {
    my ($name, $content, $error) = @$k;
    my $out = fails_with("key file $name",
                         "sendgrid_api_key_file $dir/$name eu;",
                         qq{API key file "$dir/$name" $error});

    ok(index($out, 'SG.secret') < 0 && index($out, 'SG.second') < 0,
       "key file $name: nothing of the file in the message");
}

fails_with('an empty key file in a server',
           "server { listen 127.0.0.1:%%PORT%%; "
           . "sendgrid_api_key_file $dir/empty.key; }",
           qq{API key file "$dir/empty.key" is empty});

fails_with('an empty key file in a location',
           "server { listen 127.0.0.1:%%PORT%%; location / { "
           . "sendgrid_api_key_file $dir/blank.key global; } }",
           qq{API key file "$dir/blank.key" is empty});

fails_with('a subuser key file with a space',
           "sendgrid_subuser_region acme eu $dir/space.key;",
           qq{API key file "$dir/space.key" contains whitespace, control or }
           . 'non-ASCII bytes');

fails_with('a missing subuser key file',
           "sendgrid_subuser_region ~^eu- eu $dir/nope.key;",
           qq{cannot open API key file "$dir/nope.key" }
           . '(2: No such file or directory)');

passes('a key file of 4096 bytes', "sendgrid_api_key_file $dir/4096.key;");


# region words
fails_with('region EU in sendgrid_api_key_file',
           "sendgrid_api_key_file $dir/good.key EU;",
           'invalid region "EU" in "sendgrid_api_key_file", it must be '
           . '"global" or "eu"');

fails_with('region us in sendgrid_upstream_host',
           'sendgrid_upstream_host us api.sendgrid.com;',
           'invalid region "us" in "sendgrid_upstream_host", it must be '
           . '"global" or "eu"');

fails_with('region apac in sendgrid_subuser_region',
           'sendgrid_subuser_region acme apac;',
           'invalid region "apac" in "sendgrid_subuser_region", it must be '
           . '"global" or "eu"');

fails_with('region Global in sendgrid_subuser_region with a key',
           "sendgrid_subuser_region acme Global $dir/sub.key;",
           'invalid region "Global" in "sendgrid_subuser_region", it must be '
           . '"global" or "eu"');

fails_with('region us in sendgrid_default_region',
           'sendgrid_default_region us;',
           'invalid region "us" in "sendgrid_default_region", it must be '
           . '"global" or "eu"');


# the subuser table
fails_with('a duplicate exact subuser',
           "sendgrid_subuser_region acme eu;\n"
           . "sendgrid_subuser_region ~^eu- eu;\n"
           . 'sendgrid_subuser_region acme global;',
           'duplicate subuser "acme" in "sendgrid_subuser_region"');

fails_with('a regex that does not compile', 'sendgrid_subuser_region ~( eu;',
           'sendgrid_subuser_region: pcre2_compile() failed: missing closing '
           . 'parenthesis in "("');

fails_with('a case-insensitive regex that does not compile',
           'sendgrid_subuser_region ~*^eu-[ eu;',
           'sendgrid_subuser_region: pcre2_compile() failed: missing '
           . 'terminating ] for character class in "^eu-["');

fails_with('an empty subuser name', 'sendgrid_subuser_region "" eu;',
           '"sendgrid_subuser_region" directive has an empty subuser name');

passes('names that differ in letter case are two subusers',
       "sendgrid_subuser_region Acme eu;\nsendgrid_subuser_region acme global;");

passes('the same subuser at two levels',
       "sendgrid_subuser_region acme eu;\n"
       . "server { listen 127.0.0.1:%%PORT%%; "
       . "sendgrid_subuser_region acme global; }");


# sendgrid_integrations
fails_with('sendgrid_integrations yes',
           'server { listen 127.0.0.1:%%PORT%%; location / { '
           . 'sendgrid_integrations yes; } }',
           'invalid value "yes" in "sendgrid_integrations", it must be '
           . '"on", "off" or "report_only"');

fails_with('sendgrid_integrations in http', 'sendgrid_integrations on;',
           '"sendgrid_integrations" directive is not allowed here');

fails_with('sendgrid_integrations in a server',
           'server { listen 127.0.0.1:%%PORT%%; sendgrid_integrations on; }',
           '"sendgrid_integrations" directive is not allowed here');


# duplicates at one level
fails_with('two global key files at one level',
           "sendgrid_api_key_file $dir/good.key;\n"
           . "sendgrid_api_key_file $dir/eu.key global;",
           '"sendgrid_api_key_file" directive is duplicate');

fails_with('two EU key files in one location',
           'server { listen 127.0.0.1:%%PORT%%; location / { '
           . "sendgrid_api_key_file $dir/eu.key eu; "
           . "sendgrid_api_key_file $dir/good.key eu; } }",
           '"sendgrid_api_key_file" directive is duplicate');

fails_with('two upstream hosts for one region',
           "sendgrid_upstream_host eu a.example;\n"
           . 'sendgrid_upstream_host eu b.example;',
           '"sendgrid_upstream_host" directive is duplicate');

fails_with('an empty upstream host', 'sendgrid_upstream_host eu "";',
           '"sendgrid_upstream_host" directive has an empty host');

# the level of sendgrid_error_log
fails_with('sendgrid_error_log loud', 'sendgrid_error_log loud;',
           'invalid level "loud" in "sendgrid_error_log"');

fails_with('sendgrid_error_log ERROR', 'sendgrid_error_log ERROR;',
           'invalid level "ERROR" in "sendgrid_error_log"');

fails_with('two sendgrid_error_log at one level',
           "sendgrid_error_log warn;\nsendgrid_error_log info;",
           '"sendgrid_error_log" directive is duplicate');

# other values and argument counts
fails_with('sendgrid_strict maybe', 'sendgrid_strict maybe;',
           'invalid value "maybe" in "sendgrid_strict" directive, it must be '
           . '"on" or "off"');

fails_with('sendgrid_error_body_max lots', 'sendgrid_error_body_max lots;',
           '"sendgrid_error_body_max" directive invalid value');

fails_with('sendgrid_api_key_file with three arguments',
           "sendgrid_api_key_file $dir/good.key eu extra;",
           'invalid number of arguments in "sendgrid_api_key_file" directive');

fails_with('sendgrid_subuser_region with one argument',
           'sendgrid_subuser_region acme;',
           'invalid number of arguments in "sendgrid_subuser_region" '
           . 'directive');


# a complete good configuration, every directive at the levels it allows
passes('a good configuration', <<"CONF");
    sendgrid_api_key_file   $dir/good.key;
    sendgrid_api_key_file   $dir/eu.key eu;
    sendgrid_subuser        \$http_on_behalf_of;
    sendgrid_subuser_region acme global $dir/sub.key;
    sendgrid_subuser_region ~^eu- eu;
    sendgrid_subuser_region ~*^EUROPE- eu $dir/eu.key;
    sendgrid_default_region global;
    sendgrid_upstream_host  global api.sendgrid.com;
    sendgrid_upstream_host  eu api.eu.sendgrid.com;
    sendgrid_strict         off;
    sendgrid_error_log      error;
    sendgrid_error_body_max 16k;

    server {
        listen 127.0.0.1:%%PORT%%;
        sendgrid_api_key_file   $dir/eu.key;
        sendgrid_default_region eu;
        sendgrid_error_log      warn;

        location /v3/marketing/integrations {
            sendgrid_integrations   on;
            sendgrid_api_key_file   $dir/good.key;
            sendgrid_strict         on;
            sendgrid_error_log      off;
            sendgrid_error_body_max 1k;
            proxy_pass              https://\$sendgrid_upstream_host;
        }

        location /report {
            sendgrid_integrations   report_only;
            sendgrid_subuser_region team-b eu;
            proxy_pass              https://\$sendgrid_upstream_host;
        }

        location /off {
            sendgrid_integrations off;
        }
    }
CONF


# A relative key path is relative to the configuration directory (the
# directory of the -c file, as for ssl_certificate), not the prefix: the
# configuration lives in DIR/conf/ here while the prefix is DIR/.
$t->key_file('conf/keys/rel.key', "SG.relative-to-conf\n");
$t->key_file('keys/prefix-only.key', "SG.relative-to-prefix\n");

sub test_conf_in_subdir {
    my ($http) = @_;
    my $path = $t->write_file('conf/nginx.conf', $t->conf_text($http));

    my ($rc, $out) = $t->run_nginx('-t', '-c', $path);
    unlike($out, qr/runtime error:|AddressSanitizer|LeakSanitizer/,
           'nginx -t in a subdirectory: no sanitizer report');
    return ($rc, $out, $path);
}

{
    my ($rc, $out) = test_conf_in_subdir('sendgrid_api_key_file keys/rel.key;');
    is($rc, 0, 'relative path: found in the configuration directory')
        or diag $out;

    ($rc, $out, my $path) =
        test_conf_in_subdir('sendgrid_api_key_file keys/prefix-only.key;');
    isnt($rc, 0, 'relative path: not looked up in the prefix');
    like($out, qr/\Qcannot open API key file "$dir\/conf\/keys\/prefix-only.key" (2: No such file or directory) in $path\E:\d+/,
         'relative path: the message names the path under the configuration '
         . 'directory') or diag $out;
    unlink $path;
}

# what the harness does, nginx -t -p DIR/ -c DIR/nginx.conf: DIR is both
passes('relative path with -p DIR/ -c DIR/nginx.conf',
       'sendgrid_api_key_file conf/keys/rel.key;');
fails_with('relative path that is not there',
           'sendgrid_api_key_file keys/rel.key;',
           qq{cannot open API key file "$dir/keys/rel.key" }
           . '(2: No such file or directory)');


# A running gateway: keys with surrounding whitespace and CRLF, given by
# relative paths, reach the upstream trimmed, as exactly one header.
$t->key_file('keys/live-global.key', "\r\n \t SG.live-global.Trim-Me_0 \t\r\n\r\n");
$t->key_file('keys/live-eu.key', "SG.live-eu.crlf\r\n");
$t->key_file('keys/live-sub.key', "  SG.live-subuser.9\n\n\n");

$t->start(SGTest::gateway_server(undef, '', location => <<'CONF'));
    sendgrid_api_key_file   keys/live-global.key;
    sendgrid_api_key_file   keys/live-eu.key eu;
    sendgrid_subuser_region ~^eu- eu;
    sendgrid_subuser_region acme global keys/live-sub.key;
CONF

for my $case ([ 'global', undef, 'Bearer SG.live-global.Trim-Me_0' ],
              [ 'eu', 'eu-team', 'Bearer SG.live-eu.crlf' ],
              [ 'global', 'acme', 'Bearer SG.live-subuser.9' ])
{
    my ($region, $subuser, $auth) = @$case;
    my $what = 'live, ' . ($subuser // 'no subuser');

    my $r = $t->request(GET => '/v3/marketing/integrations/abc',
                        headers => [ defined $subuser
                                     ? ('on-behalf-of' => $subuser) : () ]);
    is($r->{status}, 200, "$what: forwarded");

    my $u = $t->forwarded_once($region, $what);
    is_deeply([ SGTest::header_values($u, 'Authorization') ], [$auth],
              "$what: exactly '$auth'");
}

$t->done_testing;
