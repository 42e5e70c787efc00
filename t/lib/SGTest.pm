package SGTest;

# The test harness: a temporary prefix, nginx started with a configuration
# whose ports are filled in, two recording mock SendGrid upstreams (one
# per region), a raw HTTP client, and the checks every test file ends with:
# no crit or alert, no sanitizer or valgrind report, no crashed worker, and
# no secret in any response or log.
#
#   my $t = SGTest->new;
#   my $key = $t->key_file('global.key', "SG.test-global\n");
#   $t->start(<<'CONF');          # the inside of http{}
#       server {
#           listen 127.0.0.1:%%PORT%%;
#           location /v3/marketing/integrations {
#               sendgrid_integrations on;
#               sendgrid_api_key_file %%DIR%%/global.key;
#               proxy_pass http://$sendgrid_upstream_host;
#           }
#       }
#   CONF
#   my $r = $t->request(GET => '/v3/marketing/integrations');
#   my @seen = $t->upstream('global');
#   $t->done_testing;
#
# The server (SGTest->new(workers => 2): that many worker processes, else
# one):
#   $t->dir, $t->port, $t->module      the prefix, the gateway's port, the
#                                      module loaded (undef: built in)
#   SGTest::gateway_server($name, $directives, mode => 'report_only')
#                                      a server{} with the gateway location
#   $t->workers                        pids of the running workers
#   $t->worker_rss                     the one worker's VmRSS, in kB
#   $t->config_fails($name, $http, $message)
#                                      nginx -t refuses $http, saying
#                                      $message
#   $t->reload(wait => 1)              reload; returns once the old
#                                      workers are gone ('listening': once
#                                      they take no new request)
#
# Clients (each response: { status, reason, version, headers => { lc name
# => [values] }, header_list, body, raw }, recorded for the secret check):
#   $t->request(POST => $target, headers => [...], body => ..., chunked => 1)
#   $t->raw($bytes or [parts sent with pauses], head => 1)
#   $t->pipelined($bytes)              several requests written at once on
#                                      one connection; the responses
#   $t->keepalive(@requests)           one connection, each request once
#                                      the answer before it is in
#   $t->expect_continue($head, $body)  Expect: 100-continue by hand;
#                                      the response has interim => 0 or 1
#   $t->connect                        a socket of your own; then
#   $t->seen_response($raw)            records what it got, and
#   $t->forget_response                leaves the last one unchecked (a
#                                      test that echoes a secret on purpose)
#
# Metrics:
#   $t->metrics($path)                 GET $path; the response, and its
#                                      samples as { 'name{labels}' => value }
#
# Logs:
#   $t->error_log, $t->error_log_size  the error log, and an offset in it
#   $t->nginx_log_lines($level, $offset)
#                                      nginx's own lines at a level since
#                                      then
#   $t->sendgrid_log_lines(since => $offset, all => 1)
#                                      the module's normalized lines, each
#                                      { line, level, json, obj, after }
#   %%ERROR_VARIABLE_LOGS%%            in a configuration: access logs of
#                                      $sendgrid_error, read by
#   $t->request_and_logs(GET => $target, host => ..., subuser => ...)
#                                      a request tagged X-Test-Id and what
#                                      was logged for it: { r, id, lines,
#                                      var => { json, plain } }
#   $t->is_error_line($name, $x, source => ..., status => ..., ...)
#                                      that one normalized line and
#                                      $sendgrid_error agree with
#                                      SGTest::normalized_error(...)
#
# Checks (Test::More tests, reported at the caller's line):
#   $t->is_refused($r, $status, $body, $name)
#                                      the gateway's own JSON error, exactly,
#                                      and nothing upstream
#   is_sendgrid_error($r, $status, $name, count => 1, message => qr//)
#                                      an error in SendGrid's shape; returns
#                                      its [field, message] pairs
#   is_gateway_error($r, $status, $message, $name)
#                                      the gateway's one-entry answer
#                                      (field null), exactly
#   $t->memory_returned($name, $n, $bound_kb, sub { ... })
#                                      the worker's memory after n more
#                                      runs of a batch within bound_kb of
#                                      what it was after the first
#   $t->forwarded_once($region, $name) one request to that mock, none to
#                                      the others; returns it
#   $t->nothing_upstream($name)        no mock received anything
#   header_pairs($req, $name), header_values($req, $name)
#                                      a recorded request's headers
#
# Bodies (use SGTest qw(...) to import any of these and the checks):
#   chunked($body, $size)              the body in chunked framing
#   fold($text)                        white space folded as in excerpts
#   json_object(name => 'raw JSON', ...)   an object, undef values left out
#   create_body(write_key => 'wk', label => '"x"', extra => [...])
#                                      a valid create body, members replaced
#   json_escape($s), body_error($message), invalid_json_at($offset)
#                                      the gateway's escaping and its answer
#                                      to a body that breaks the rules
#   is_bytes($got, $want, $name)       a byte comparison that shows where
#                                      long strings part
#
# The nginx under test, for tests of what a version has:
#   $t->nginx_version                  its version as nginx_version in
#                                      nginx.h has it (1.25.1 is 1025001)
#   $t->has_module('http_v3')          configured --with-http_v3_module
#   $t->proxy_first($body)             the header lines nginx's proxy
#                                      module sends before the client's
#                                      (nginx 1.29.7 and newer: no
#                                      Connection: close, as
#                                      proxy_http_version is 1.1)
#
# HTTP/2 and HTTP/3:
#   $t->tls_certificate                a self-signed certificate and key
#                                      for localhost (made once), as
#                                      ssl_certificate directives
#   $t->http2_listen($port, tls => 1)  listen directives of a server{}
#                                      speaking HTTP/2 on port, over TLS
#                                      (ALPN) or in cleartext (prior
#                                      knowledge)
#   $t->h2(port => N, tls => 1, streams => [{ headers => [[n, v]...],
#          data => [frame bytes...], end => 'data', pause => s }...])
#                                      one connection, every stream at
#                                      once, through t/lib/h2client; the
#                                      answers: { streams => [ response
#                                      with reset => code ], goaway, error }
#   $t->h3(port => N, method => 'POST', target => ..., body => ...)
#                                      one HTTP/3 request through
#                                      ngtcp2's example client
#                                      (gtlsclient), which sends only
#                                      user-agent and content-length
#                                      besides the pseudo-headers; the
#                                      response, or undef (with the
#                                      client's output in h3_output)
#
# Environment: TEST_NGINX_BINARY (default /usr/sbin/nginx), TEST_NGINX_MODULE
# (the .so to load_module; default build/ngx_http_sendgrid_integrations_module.so
# when the binary is Debian's), TEST_NGINX_LEAVE=1 keeps the prefix.
# TEST_NGINX_WRAPPER: a command the running server is started under (not
# nginx -t or -s), %%DIR%% standing for the prefix, e.g. valgrind; every
# wait of the harness is then TEST_NGINX_SLOW (default 10) times longer,
# and a valgrind log in logs/valgrind.* is read by the closing checks
# (see valgrind_errors).

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64;
use POSIX ':sys_wait_h';
use SGPort qw(free_port);
use Test::More ();
use Time::HiRes qw(sleep time);

our $TOP = abs_path(dirname(__FILE__) . '/../..');

# the helpers a test file may import: use SGTest qw(json_object ...);
our @EXPORT_OK = qw(json_object create_body json_escape body_error
                    invalid_json_at is_bytes is_sendgrid_error
                    is_gateway_error header_pairs header_values chunked
                    fold);

my $json = JSON::PP->new->canonical->utf8;

# how many times longer every wait is: a server under valgrind is slow
our $SLOW = $ENV{TEST_NGINX_WRAPPER} ? $ENV{TEST_NGINX_SLOW} || 10 : 1;

# %%ERROR_VARIABLE_LOGS%% in a configuration: two access logs of
# $sendgrid_error, with nginx's two escapings, tagged with the request's
# X-Test-Id; request_and_logs and sendgrid_error_of read them.
my %error_variable_log = (json => 'errlog-json.log',
                          plain => 'errlog-plain.log');

my $ERROR_VARIABLE_LOGS = <<"CONF";
    log_format errlog_json escape=json '\$http_x_test_id [\$sendgrid_error]';
    log_format errlog_plain '\$http_x_test_id [\$sendgrid_error]';
    access_log %%DIR%%/logs/$error_variable_log{json} errlog_json;
    access_log %%DIR%%/logs/$error_variable_log{plain} errlog_plain;
CONF

sub new {
    my ($class, %opt) = @_;

    my $dir = tempdir('sgtest-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{TEST_NGINX_LEAVE});
    chmod 0755, $dir;

    my $binary = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $module = $ENV{TEST_NGINX_MODULE};
    if (!defined $module && $binary eq '/usr/sbin/nginx') {
        $module = "$TOP/build/ngx_http_sendgrid_integrations_module.so";
    }

    my $self = bless {
        dir => $dir, binary => $binary, module => $module,
        port => free_port(), secrets => [], responses => [],
        mocks => {}, opt => \%opt,
    }, $class;

    make_path("$dir/logs", "$dir/tmp");

    return $self;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }

# The module nginx loads with load_module, or undef when it is built in.
sub module { $_[0]{module} }

# Debian's lua-nginx-module (and the NDK it needs), for tests of the module
# next to another one that reads the body and the headers: loaded from
# then on when the nginx under test takes them (Debian's does; a build of
# our own must be binary compatible with them), and true; otherwise
# false, and the reason in $t->{lua_missing}.
sub load_lua {
    my ($self) = @_;
    my @load = map { "load_module /usr/lib/nginx/modules/$_;" }
               qw(ndk_http_module.so ngx_http_lua_module.so);

    if (grep { !-f "/usr/lib/nginx/modules/$_" }
        qw(ndk_http_module.so ngx_http_lua_module.so))
    {
        $self->{lua_missing} = 'Debian\'s lua module is not installed';
        return 0;
    }

    my @main = @{$self->{main} // []};
    push @{$self->{main}}, @load;

    my ($rc, $out) = $self->test_config('');
    return 1 unless $rc;

    $self->{main} = \@main;
    ($self->{lua_missing}) = $out =~ /\[emerg\] (?:\d+#\d+: )?([^\n]*)/;
    $self->{lua_missing} //= 'nginx -t failed with the lua module';
    return 0;
}

# A port that refuses connections for as long as the test runs: bound
# here and never listening.  A port merely found free could be taken by a
# test running alongside, whose mock would then answer.
my @dead_sockets;

sub dead_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp')
        or die "no free port: $!";
    push @dead_sockets, $s;
    return $s->sockport;
}

# Writes a file under the prefix; a key file's trimmed key is remembered as
# a secret that must never show in a response or a log.
sub key_file {
    my ($self, $name, $content) = @_;
    my $path = $self->write_file($name, $content);
    (my $key = $content) =~ s/^[ \t\r\n]+|[ \t\r\n]+$//g;
    $self->secret($key) if length $key;
    return $path;
}

sub secret {
    my ($self, @s) = @_;
    push @{$self->{secrets}}, @s;
}

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = "$self->{dir}/$name";
    make_path(dirname($path));
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh $content;
    close $fh;
    chmod 0644, $path;
    return $path;
}

# Starts the mock upstream of a region ('global' or 'eu').
sub mock {
    my ($self, $region, %opt) = @_;
    return $self->{mocks}{$region} if $self->{mocks}{$region};

    my $port = free_port();
    my $record = "$self->{dir}/upstream-$region";
    make_path($record);

    my @args = ('--port', $port, '--record', $record, '--name', $region,
                '--response', "$self->{dir}/upstream-$region.response");
    push @args, '--cert', $opt{cert}, '--key', $opt{key} if $opt{cert};

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        # never hold the TAP pipe: prove waits for it to close
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', "$self->{dir}/mock-$region.stderr";
        exec($^X, "$TOP/t/lib/mock-sendgrid", @args) or exit 1;
    }

    wait_port($port) or die "mock $region did not start";

    return $self->{mocks}{$region} = { pid => $pid, port => $port,
                                       record => $record };
}

sub wait_port {
    my ($port, $seconds) = @_;
    for (1 .. ($seconds // 10) * 20) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        if ($s) { close $s; return 1; }
        sleep 0.05;
    }
    return 0;
}

# What the mock of a region answers next: status, headers (list of
# [name, value]), body (repeat => n: n times over), chunked, chunk_size,
# delay_ms; faults: raw => bytes sent in place of a made answer, cut => n
# bytes of the answer only, end => 'reset' or 'close' after it (hold_ms
# later).  No
# argument: back to the imitation of the API.
sub upstream_response {
    my ($self, $region, %r) = @_;
    my $file = "$self->{dir}/upstream-$region.response";
    if (!%r) {
        unlink $file;
        return;
    }
    my %spec = %r;
    $spec{body_b64} = encode_base64(delete $spec{body} // '', '');
    $spec{raw_b64} = encode_base64(delete $spec{raw}, '')
        if defined $spec{raw};
    $self->write_file("upstream-$region.response", $json->encode(\%spec));
}

# The requests the mock of a region received since the last call, oldest
# first; each { method, target, version, headers => [[name, value]...],
# body }.
sub upstream {
    my ($self, $region) = @_;
    my $m = $self->{mocks}{$region} or return ();
    opendir my $d, $m->{record} or return ();
    my @files = sort grep { /\.json$/ } readdir $d;
    closedir $d;

    my @reqs;
    for my $f (@files) {
        my $path = "$m->{record}/$f";
        open my $fh, '<', $path or next;
        local $/;
        my $r = $json->decode(<$fh>);
        close $fh;
        unlink $path;
        $r->{body} = decode_base64(delete $r->{body_b64});
        push @reqs, $r;
    }
    return @reqs;
}

# Headers of a recorded request named (any case) name, in order, as
# [name, value] pairs; header_values gives their values.
sub header_pairs {
    my ($req, $name) = @_;
    return grep { lc $_->[0] eq lc $name } @{$req->{headers}};
}

sub header_values {
    return map { $_->[1] } header_pairs(@_);
}

# What the mocks of the regions received since the last look, as
# "region: METHOD target" lines.
sub upstream_summary {
    my ($self, @regions) = @_;
    return map { my $region = $_;
                 map { "$region: $_->{method} $_->{target}" }
                 $self->upstream($region) } @regions;
}

# A test that no mock received a request since the last look.
sub nothing_upstream {
    my ($self, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::is_deeply(
        [ $self->upstream_summary(sort keys %{$self->{mocks}}) ], [],
        "$name: nothing upstream");
}

# Two tests: the mock of region received one request since the last look,
# and no other mock received any.  Returns that request (when there is
# none, a stand-in without headers, so that the checks that follow fail
# rather than die).
sub forwarded_once {
    my ($self, $region, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @seen = $self->upstream($region);
    my @others = $self->upstream_summary(grep { $_ ne $region }
                                         sort keys %{$self->{mocks}});

    Test::More::is(scalar @seen, 1,
                   "$name: one request to the $region upstream");
    Test::More::is_deeply(\@others, [],
                          "$name: nothing to the other upstreams");

    return $seen[0] // { method => '', target => '', version => '',
                         headers => [], body => '' };
}

sub conf_text {
    my ($self, $http) = @_;
    my $dir = $self->{dir};

    my $main = '';
    $main .= "load_module $self->{module};\n" if $self->{module};
    $main .= "$_\n" for @{$self->{main} // []};
    $main .= "user root root;\n" if $> == 0;
    my $workers = $self->{opt}{workers} // 1;
    $main .= <<"CONF";
worker_processes $workers;
daemon on;
master_process on;
error_log $dir/logs/error.log $self->{opt}{log_level};
pid $dir/logs/nginx.pid;

events {
    worker_connections 256;
}

http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

%%UPSTREAMS%%
$http
}
CONF
    return $self->substitute($main);
}

sub substitute {
    my ($self, $text) = @_;
    my $ups = '';
    for my $region (sort keys %{$self->{mocks}}) {
        my $p = $self->{mocks}{$region}{port};
        $ups .= "    upstream sendgrid_$region { server 127.0.0.1:$p; }\n";
    }
    $ups .= "    sendgrid_upstream_host global sendgrid_global;\n"
            . "    sendgrid_upstream_host eu sendgrid_eu;\n"
        if $self->{mocks}{global} && $self->{mocks}{eu}
           && !$self->{opt}{no_upstream_hosts};

    $text =~ s/^[ \t]*%%ERROR_VARIABLE_LOGS%%[ \t]*\n/$ERROR_VARIABLE_LOGS/mg;
    $text =~ s/%%UPSTREAMS%%/$ups/g;
    $text =~ s/%%PORT%%/$self->{port}/g;
    $text =~ s/%%DIR%%/$self->{dir}/g;
    $text =~ s/%%PORT_(\w+)%%/$self->{mocks}{lc $1} ? $self->{mocks}{lc $1}{port} : die "no mock $1"/ge;
    return $text;
}

# The text of a server{} for start(): it listens on the gateway's port
# (default_server => 1: as the default server; listen => directives in
# place of that listen), is named name (unless undef), holds the directives given, and the gateway location: the API's
# prefix with "sendgrid_integrations on" (or mode => 'report_only', 'off'),
# location => more directives, and proxy_pass to $sendgrid_upstream_host
# (with mode => 'off', which leaves that variable empty, to the global
# upstream).
#   $t->start(SGTest::gateway_server('localhost')
#             . SGTest::gateway_server('small.test',
#                                      'client_max_body_size 16;'));
sub gateway_server {
    my ($name, $directives, %opt) = @_;

    my $listen = $opt{listen} // "listen 127.0.0.1:%%PORT%%"
                 . ($opt{default_server} ? ' default_server' : '') . ';';
    my $text = "    server {\n" . indent($listen, 8);
    $text .= "        server_name $name;\n" if defined $name;
    $text .= indent($directives, 8)
           . "\n        location /v3/marketing/integrations {\n"
           . '            sendgrid_integrations ' . ($opt{mode} // 'on') . ";\n"
           . indent($opt{location}, 12)
           . '            proxy_pass http://'
           . (($opt{mode} // '') eq 'off' ? 'sendgrid_global'
                                           : '$sendgrid_upstream_host')
           . ";\n"
           . "        }\n    }\n";
    return $text;
}

# Lines of configuration, each indented by n spaces; blank lines dropped.
sub indent {
    my ($text, $n) = @_;
    return join '', map { (' ' x $n) . "$_\n" }
                    grep { length }
                    map { s/^\s+|\s+$//gr } split /\n/, $text // '';
}

# Three tests: nginx -t fails on the configuration (the inside of http{})
# with message, in the file, and says the test failed.  Returns the output.
sub config_fails {
    my ($self, $what, $http, $message) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $conf = "$self->{dir}/nginx.conf";

    my ($rc, $out) = $self->test_config($http);

    Test::More::isnt($rc, 0, "$what: nginx -t fails");
    # Debian's nginx logs to stderr before the configuration is read
    # ("[emerg] pid#tid: ..."), a build with a default log file says
    # "nginx: [emerg] ..."
    Test::More::like($out,
        qr/\[emerg\] (?:\d+#\d+: )?\Q$message\E in \Q$conf\E:\d+\n/,
        "$what: $message")
        or Test::More::diag($out);
    Test::More::like($out, qr/configuration file \Q$conf\E test failed/,
                     "$what: nginx says the test failed");

    return $out;
}

# Writes the configuration (the inside of http{}, or a whole file with
# whole => 1) and runs nginx -t on it; returns (exit code, output).
sub test_config {
    my ($self, $http, %opt) = @_;
    $self->{opt}{log_level} //= 'info';
    my $text = $opt{whole} ? $self->substitute($http) : $self->conf_text($http);
    my $conf = $self->write_file('nginx.conf', $text);
    return $self->run_nginx('-t', '-c', $conf);
}

# Starts nginx with the given inside of http{}; both mocks run unless
# mocks => [] says otherwise.
sub start {
    my ($self, $http, %opt) = @_;

    $self->{opt}{log_level} //= $opt{log_level} // 'info';
    $self->mock($_) for @{$opt{mocks} // ['global', 'eu']};

    my ($rc, $out) = $self->test_config($http, %opt);
    die "nginx -t failed:\n$out" if $rc;

    local $ENV{ASAN_OPTIONS} = "log_path=$self->{dir}/logs/sanitizer:"
        . "detect_leaks=1:abort_on_error=1";
    local $ENV{UBSAN_OPTIONS} = "log_path=$self->{dir}/logs/sanitizer:"
        . "print_stacktrace=1";
    local $ENV{LSAN_OPTIONS} = "suppressions=$TOP/t/lsan.supp:"
        . "print_suppressions=0";

    ($rc, $out) = $self->run_nginx({ wrap => 1 },
                                   '-c', "$self->{dir}/nginx.conf");
    die "nginx did not start: $out" if $rc;

    # stopped at the end whatever happens next
    $self->{started} = 1;

    wait_port($self->{port}, 20 * $SLOW) or die "nginx does not listen";

    # the master listens before its workers exist
    for (1 .. 400 * $SLOW) {
        last if $self->workers;
        sleep 0.05;
    }
    $self->workers or die "nginx has no worker";

    return $self;
}

# Runs the nginx binary with the prefix and args (after { wrap => 1 }:
# under TEST_NGINX_WRAPPER); returns (exit code, output).  The output goes
# through a file, not a pipe: a helper process that outlives nginx (the
# sanitizers' symbolizer) must not hold our end.
sub run_nginx {
    my ($self, @args) = @_;
    my $opt = ref $args[0] ? shift @args : {};
    my $file = "$self->{dir}/nginx.out";

    my @wrapper;
    if ($opt->{wrap} && $ENV{TEST_NGINX_WRAPPER}) {
        @wrapper = split ' ', $ENV{TEST_NGINX_WRAPPER};
        s/%%DIR%%/$self->{dir}/g for @wrapper;
    }

    # nginx -t and nginx -s exit without freeing their configuration, by
    # design: no leak check there; the running server sets its own
    local $ENV{ASAN_OPTIONS} = $ENV{ASAN_OPTIONS} // "detect_leaks=0";
    local $ENV{UBSAN_OPTIONS} = $ENV{UBSAN_OPTIONS} // "print_stacktrace=1";

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $file;
        open STDERR, '>&', \*STDOUT;
        exec(@wrapper, $self->{binary}, '-p', "$self->{dir}/", @args)
            or exit 127;
    }

    waitpid($pid, 0);
    my ($rc, $out) = ($? >> 8, slurp($file) // '');

    push @{$self->{sanitizer}}, $out
        if $out =~ /runtime error:|AddressSanitizer|LeakSanitizer/;

    return ($rc, $out);
}

sub nginx_pid {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/nginx.pid" or return;
    my $pid = <$fh>;
    defined $pid or return;    # the master has not written it yet
    chomp $pid;
    return $pid;
}

# The worker processes of the running master: its children in /proc.
sub workers {
    my ($self) = @_;
    my $master = $self->nginx_pid or return ();
    opendir my $d, '/proc' or return ();
    my @pids;
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // '';
        close $fh;
        # the parent follows the command in parentheses and the state
        my ($ppid) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        push @pids, $pid if $ppid == $master;
    }
    closedir $d;
    return @pids;
}

# The resident memory of the one worker, in kB (VmRSS in /proc/PID/status).
sub worker_rss {
    my ($self) = @_;
    my @workers = $self->workers;
    die "worker_rss: not one worker but " . scalar(@workers) . "\n"
        unless @workers == 1;
    my ($kb) = slurp("/proc/$workers[0]/status") =~ /^VmRSS:\s+(\d+) kB/m;
    return $kb;
}

# True when nginx runs under a sanitizer or valgrind, whose allocators
# hold freed memory back on purpose (ASan's quarantine), so that resident
# memory says nothing of what the module gives back.
sub checked_allocator {
    my ($self) = @_;
    $self->{checked_allocator} //= $ENV{TEST_NGINX_WRAPPER}
        || index(slurp($self->{binary}), 'AddressSanitizer') >= 0 ? 1 : 0;
    return $self->{checked_allocator};
}

# A test that the worker gives back the memory of what batch->() does:
# the batch runs once to warm the allocator up, then n times, and the
# worker's resident memory may then exceed what it was after the warm-up
# by at most bound kB.  Returns the two figures (kB).  Skipped where
# checked_allocator().
sub memory_returned {
    my ($self, $name, $n, $bound, $batch) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if ($self->checked_allocator) {
        $batch->();
        Test::More::note("$name: resident memory not measured under a"
                         . " sanitizer or valgrind");
        return;
    }

    $batch->();
    my $before = $self->worker_rss;
    $batch->() for 1 .. $n;
    my $after = $self->worker_rss;

    Test::More::note("$name: worker VmRSS $before kB after the warm-up,"
                     . " $after kB after $n more batches");
    Test::More::cmp_ok($after - $before, '<=', $bound,
                       "$name: worker memory returned (within $bound kB"
                       . " after $n batches)");
    return ($before, $after);
}

# Signals nginx to reload its configuration file.  wait => 1: returns
# once a new worker runs and every old one has exited; wait => 'listening':
# once a new worker runs and every old one has exited or closed its
# listening sockets ("gracefully shutting down", a notice), after which no
# new request reaches it.  With a wait, returns the time the reload was
# seen complete, or undef after 30 seconds (workers of a sanitizer build
# are slow to exit).
sub reload {
    my ($self, %opt) = @_;
    my %old = map { $_ => 1 } $self->workers;

    my ($rc, $out) = $self->run_nginx('-c', "$self->{dir}/nginx.conf",
                                      '-s', 'reload');
    die "reload failed: $out" if $rc;
    return unless $opt{wait};

    for (1 .. 1200 * $SLOW) {
        my @new = grep { !$old{$_} } $self->workers;
        my $log = $opt{wait} eq 'listening' ? $self->error_log : '';
        my @serving = grep { kill(0, $_)
                             && $log !~ /\b$_#\d+: gracefully shutting down/ }
                      keys %old;
        return time if @new && !@serving;
        sleep 0.025;
    }
    return undef;
}

sub stop {
    my ($self) = @_;

    if ($self->{started}) {
        my $pid = $self->nginx_pid;
        if ($pid) {
            kill 'QUIT', $pid;
            for (1 .. 200 * $SLOW) {
                last unless kill 0, $pid;
                sleep 0.05;
            }
            kill 'KILL', $pid if kill 0, $pid;
        }
        $self->{started} = 0;
    }

    for my $m (values %{$self->{mocks}}) {
        next unless $m->{pid};
        kill 'TERM', $m->{pid};
        waitpid($m->{pid}, 0);
        $m->{pid} = 0;
    }
}

sub DESTROY {
    my ($self) = @_;
    local $?;
    my $aborted = $self->{started} && !$self->{checked};
    $self->stop;
    $self->diag_aborted if $aborted;
}

# A file that died before done_testing: what its checks would have looked
# at, printed before the directory goes.
sub diag_aborted {
    my ($self) = @_;
    my @lines = grep { /\[(crit|alert|emerg)\]|exited on signal|Sanitizer/ }
                split /\n/, $self->error_log;
    my @reports = map { slurp($_) } grep { m{/sanitizer\.} } $self->log_files;
    Test::More::diag(join "\n", 'the file ended early; nginx logged:',
                     @lines ? @lines : '(nothing above [error])', @reports);
}

# an interrupted test still stops what it started
$SIG{INT} = $SIG{TERM} = sub { exit 1 };

# A connection to the gateway, for exchanges the methods below do not
# cover; record what comes back with seen_response.
sub connect {
    my ($self) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Proto => 'tcp')
        or die "connect: $!";
    binmode $s;
    return $s;
}

# Records raw response bytes for the closing check that no secret shows
# in a response; every method here that reads a response does it.
sub seen_response {
    my ($self, @raw) = @_;
    push @{$self->{responses}}, grep { defined } @raw;
}

# Leaves the last recorded response out of that check: for a test that
# makes the upstream echo a secret on purpose.
sub forget_response {
    my ($self) = @_;
    pop @{$self->{responses}};
}

# Sends raw bytes (or a list of parts, sent with pauses) and reads one
# response: { status, reason, headers => { lc name => [values] },
# header_list => [[name, value]], body, raw }.
sub raw {
    my ($self, $bytes, %opt) = @_;

    my $s = $self->connect;
    if (ref $bytes eq 'ARRAY') {
        for my $part (@$bytes) {
            syswrite_all($s, $part);
            sleep($opt{pause} // 0.05);
        }
    } else {
        syswrite_all($s, $bytes);
    }

    my $r = read_response($s, $opt{head});
    close $s;

    $self->seen_response($r->{raw}) if $r;
    return $r;
}

# Sends bytes (several requests, or a request whose body is another) on
# one connection at once, reads until the server closes it, and returns
# the responses found in what came back.
sub pipelined {
    my ($self, $bytes) = @_;

    my $s = $self->connect;
    syswrite_all($s, $bytes);
    my $buf = read_to_close($s);
    close $s;

    my @responses;
    while (length $buf) {
        my $r = take_response(\$buf, sub { 0 }) or last;
        push @responses, $r;
    }
    $self->seen_response(map { $_->{raw} } @responses);
    return @responses;
}

# Sends requests one after another on one connection, each once the
# answer to the one before is in; returns the answers.
sub keepalive {
    my ($self, @requests) = @_;

    my $s = $self->connect;
    my @responses;
    for my $req (@requests) {
        syswrite_all($s, $req);
        my $r = read_response($s) or last;
        $self->seen_response($r->{raw});
        push @responses, $r;
    }
    close $s;
    return @responses;
}

# Expect: 100-continue by hand: sends the head (which asks for it), waits
# for the interim answer, then sends the body and reads the final answer.
# A final answer in place of the interim one ends the exchange.  The
# response has interim => 1 when the body was asked for, else 0.
sub expect_continue {
    my ($self, $head, $body) = @_;

    my $s = $self->connect;
    syswrite_all($s, $head);

    # byte by byte: nothing of a final answer may be read here
    my $buf = '';
    local $SIG{ALRM} = sub { die "no interim or final answer\n" };
    alarm 20 * $SLOW;
    while ($buf !~ /\r\n\r\n/) {
        sysread($s, $buf, 1, length $buf) or last;
    }
    alarm 0;

    my $r;
    if ($buf eq "HTTP/1.1 100 Continue\r\n\r\n") {
        syswrite_all($s, $body);
        $r = read_response($s) or die "no final answer";
        $r->{interim} = 1;
    } else {
        $buf .= read_to_close($s);
        $r = take_response(\$buf, sub { 0 }) or die "no answer";
        $r->{interim} = 0;
    }
    close $s;

    $self->seen_response($r->{raw});
    return $r;
}

sub syswrite_all {
    my ($s, $data) = @_;
    while (length $data) {
        my $n = syswrite($s, $data);
        die "write: $!" unless defined $n;
        substr($data, 0, $n) = '';
    }
}

# Everything the peer sends until it closes the connection.
sub read_to_close {
    my ($s) = @_;
    my $buf = '';
    local $SIG{ALRM} = sub { die "timed out reading until the close\n" };
    alarm 20 * $SLOW;
    1 while sysread($s, $buf, 65536, length $buf);
    alarm 0;
    return $buf;
}

# Reads one response from a socket (head => 1: the answer to HEAD).
sub read_response {
    my ($s, $head) = @_;
    my $buf = '';
    local $SIG{ALRM} = sub { die "timed out reading a response\n" };
    alarm 20 * $SLOW;
    my $r = take_response(\$buf,
                          sub { sysread($s, $buf, 65536, length $buf) },
                          $head);
    alarm 0;
    return $r;
}

# Takes one response off the front of $$buf, framed by its Content-Length,
# chunked encoding or the end of the bytes; more->() appends bytes to
# $$buf and returns false once there are no more.
sub take_response {
    my ($buf, $more, $head) = @_;

    while ($$buf !~ /\r\n\r\n/) {
        $more->() or last;
    }

    my $r = parse_head($buf) or return undef;

    my $len = $r->{headers}{'content-length'}[0];
    my $te = $r->{headers}{'transfer-encoding'}[0] // '';

    if ($head || $r->{status} == 204 || $r->{status} == 304) {
        $r->{body} = '';
    } elsif (defined $len) {
        while (length $$buf < $len) {
            $more->() or last;
        }
        $r->{body} = substr($$buf, 0, $len, '');
    } elsif ($te =~ /chunked/i) {
        $r->{body} = '';
        while (1) {
            while ($$buf !~ /\r\n/) {
                $more->() or last;
            }
            $$buf =~ s/^([0-9a-fA-F]+)[^\r]*\r\n// or last;
            my $size = hex $1;
            while (length $$buf < $size + 2) {
                $more->() or last;
            }
            $r->{body} .= substr($$buf, 0, $size);
            substr($$buf, 0, $size + 2) = '';
            last if $size == 0;
        }
    } else {
        1 while $more->();
        $r->{body} = $$buf;
        $$buf = '';
    }

    $r->{raw} .= $r->{body};
    return $r;
}

sub parse_head {
    my ($bufref) = @_;
    $$bufref =~ s/^(.*?\r\n)\r\n//s or return undef;
    my $head = $1;
    my ($line, @lines) = split /\r\n/, $head;
    my ($version, $status, $reason) = $line =~ m{^(HTTP/\d\.\d) (\d+) ?(.*)$}
        or return undef;

    my (%h, @list);
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        push @{$h{lc $k}}, $v;
        push @list, [$k, $v];
    }

    return { version => $version, status => $status, reason => $reason,
             headers => \%h, header_list => \@list, raw => "$head\r\n" };
}

# A request as a client would send it:
#   $t->request(POST => '/v3/...', headers => [Name => 'value', ...],
#               body => '...', chunked => 1, chunk_size => N, http => '1.1')
sub request {
    my ($self, $method, $target, %opt) = @_;
    my @h = @{$opt{headers} // []};
    my $body = $opt{body};
    my $http = $opt{http} // '1.0';

    my %names;
    for (my $i = 0; $i < @h; $i += 2) {
        $names{lc $h[$i]} = 1;
    }

    my $req = "$method $target HTTP/$http\r\n";
    $req .= "Host: localhost\r\n" unless $names{host};

    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }

    $req .= "Connection: close\r\n" if $http eq '1.1' && !$names{connection};

    if (defined $body && $opt{chunked}) {
        $req .= "Transfer-Encoding: chunked\r\n\r\n"
                . chunked($body, $opt{chunk_size} || 1024);
    } elsif (defined $body) {
        $req .= "Content-Length: " . length($body) . "\r\n\r\n$body";
    } else {
        $req .= "\r\n";
    }

    return $self->raw($req, head => $method eq 'HEAD');
}

# A body in chunked framing: chunks of at most size bytes, then the last
# chunk.
sub chunked {
    my ($body, $size) = @_;
    return join('', map { sprintf "%x\r\n%s\r\n", length, $_ }
                    $body =~ /(.{1,$size})/gs) . "0\r\n\r\n";
}

# Text with its white space folded as the normalized line's excerpts have
# it: each run one space, none at either end.
sub fold {
    my ($s) = @_;
    $s =~ s/[ \t\r\n\f\x0b]+/ /g;
    $s =~ s/^ | $//g;
    return $s;
}

# A scrape of the metrics endpoint at path: (response, { series => value })
# with series the sample's name and labels as written ('name{a="b"}').
sub metrics {
    my ($self, $path) = @_;
    my $r = $self->request(GET => $path);
    my %samples;
    for my $line (split /\n/, $r->{body} // '') {
        next if $line =~ /^#/;
        my ($series, $value) = $line =~ /^(.+) (\S+)$/ or next;
        $samples{$series} = $value;
    }
    return ($r, \%samples);
}


# -- the nginx under test, HTTP/2 ------------------------------------------

# nginx -V of the binary under test, once.
sub nginx_build_info {
    my ($self) = @_;
    $self->{build_info} //= ($self->run_nginx('-V'))[1];
    return $self->{build_info};
}

sub nginx_version {
    my ($self) = @_;
    my ($v) = $self->nginx_build_info =~ m{nginx version: nginx/(\d+\.\d+\.\d+)}
        or die "no version in nginx -V";
    my ($major, $minor, $patch) = split /\./, $v;
    return $major * 1000000 + $minor * 1000 + $patch;
}

sub has_module {
    my ($self, $name) = @_;
    return $self->nginx_build_info =~ /--with-\Q$name\E_module(?:\s|$)/;
}

sub proxy_first {
    my ($self, $body) = @_;
    my @h = (['Host', 'sendgrid_global']);
    push @h, ['Connection', 'close'] if $self->nginx_version < 1029007;
    push @h, ['Content-Length', length $body] if defined $body;
    return @h;
}

sub tls_certificate {
    my ($self) = @_;
    my ($crt, $key) = ("$self->{dir}/localhost.crt",
                       "$self->{dir}/localhost.key");
    if (!-f $crt) {
        my $out = `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost -keyout $key -out $crt 2>&1`;
        die "openssl: $out" if $?;
    }
    return "ssl_certificate $crt;\nssl_certificate_key $key;\n";
}

# nginx 1.25.1 moved the switch to HTTP/2 from the listen directive's
# http2 parameter to the http2 directive.
sub http2_listen {
    my ($self, $port, %opt) = @_;
    my $ssl = $opt{tls} ? ' ssl' : '';
    my $text = $self->nginx_version >= 1025001
               ? "listen 127.0.0.1:$port$ssl;\nhttp2 on;\n"
               : "listen 127.0.0.1:$port$ssl http2;\n";
    $text .= $self->tls_certificate if $opt{tls};
    return $text;
}

sub h2 {
    my ($self, %job) = @_;
    my @streams = map { { %$_, data => [ map { encode_base64($_, '') }
                                         @{$_->{data} // []} ] } }
                  @{$job{streams}};
    my $file = $self->write_file('h2-job.json',
                                 $json->encode({ %job, streams => \@streams }));
    my $out = `/usr/bin/python3 $TOP/t/lib/h2client < $file`;
    die "h2client failed: $out" if $? || $out !~ /^\{/;
    my $result = $json->decode($out);

    for my $s (@{$result->{streams}}) {
        $s->{body} = decode_base64($s->{body});
        $s->{header_list} = $s->{headers};
        my %h;
        push @{$h{lc $_->[0]}}, $_->[1] for @{$s->{headers}};
        $s->{headers} = \%h;
        $s->{raw} = join('', map { "$_->[0]: $_->[1]\r\n" }
                             @{$s->{header_list}}) . $s->{body};
        $self->seen_response($s->{raw});
    }
    return $result;
}

our $H3CLIENT = '/usr/bin/gtlsclient';

sub h3 {
    my ($self, %o) = @_;
    my @args = ('--exit-on-all-streams-close', '--no-quic-dump',
                '--timeout=5s', '-m', $o{method} // 'GET');
    push @args, '-d', $self->write_file('h3-body', $o{body})
        if defined $o{body};
    my $url = "https://localhost:$o{port}$o{target}";

    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec($H3CLIENT, @args, '127.0.0.1', $o{port}, $url) or exit 127;
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    $self->{h3_output} = $out;

    my %r = (headers => {}, header_list => [], body => '');
    for (split /\n/, $out) {
        if (/^http: stream 0x0 \[:status: (\d+)\]$/) {
            $r{status} = $1;
        } elsif (/^http: stream 0x0 \[([^:\]][^:]*): (.*)\]$/) {
            push @{$r{headers}{lc $1}}, $2;
            push @{$r{header_list}}, [$1, $2];
        } elsif (/^[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2})+)/) {
            $r{body} .= pack 'H*', $1 =~ s/ //gr;
        }
    }
    return undef unless defined $r{status};

    $r{raw} = join('', map { "$_->[0]: $_->[1]\r\n" } @{$r{header_list}})
              . $r{body};
    $self->seen_response($r{raw});
    return \%r;
}

sub h3_output { $_[0]{h3_output} }


# -- request bodies and the gateway's answers to them ---------------------

# A JSON object from name => raw JSON text pairs, in order; a pair whose
# value is undef is left out.
sub json_object {
    my @kv = @_;
    my @members;
    while (my ($k, $v) = splice @kv, 0, 2) {
        push @members, qq("$k":$v) if defined $v;
    }
    return '{' . join(',', @members) . '}';
}

# A valid create (POST) body: destination, filters, properties, then label
# (none unless given), each given as raw JSON replacing the default (undef
# leaves it out), then extra => [name => raw JSON, ...].  write_key: the
# one in the default properties.
sub create_body {
    my (%o) = @_;
    my %m = (destination => '"Segment"',
             filters => '{"email_events":["open"]}', %o);
    if (!exists $o{properties}) {
        my $wk = $o{write_key} // die "create_body: no write_key";
        $m{properties} = qq({"write_key":"$wk","destination_region":"US"});
    }
    return json_object((map { ($_ => $m{$_}) }
                        qw(destination filters properties label)),
                       @{$o{extra} // []});
}

# A string as the gateway writes it inside a JSON string.
sub json_escape {
    my ($s) = @_;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\t/\\t/g;
    $s =~ s/([\x00-\x1f\x7f])/sprintf '\\u%04x', ord $1/ge;
    return $s;
}

# The gateway's answer to a body that breaks the rules.
sub body_error {
    my ($message) = @_;
    return '{"errors":[{"message":"' . json_escape($message)
           . '","field":"request"}]}';
}

# The message for a body that is not JSON, n bytes in.
sub invalid_json_at {
    my ($n) = @_;
    return "request body is not valid JSON at byte $n";
}

# A test that got is want, byte for byte, which on failure shows where
# they part instead of printing both.
sub is_bytes {
    my ($got, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::ok(1, $name) if defined $got && $got eq $want;
    my $i = 0;
    $i++ while defined $got && $i < length $got && $i < length $want
               && substr($got, $i, 1) eq substr($want, $i, 1);
    Test::More::ok(0, $name);
    Test::More::diag(sprintf "got %s bytes, want %d; first difference at %d"
                             . "\n   got: %s\n  want: %s",
                     defined $got ? length $got : 'undef', length $want, $i,
                     excerpt($got, $i), excerpt($want, $i));
    return 0;
}

# Up to 100 bytes of s around offset i, control bytes and the like shown
# as \xNN.
sub excerpt {
    my ($s, $i) = @_;
    return 'undef' unless defined $s;
    my $from = $i > 30 ? $i - 30 : 0;
    (my $e = substr($s, $from, 100)) =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return ($from ? '...' : '') . $e;
}

# Four tests: the gateway refused the request itself, with the status, one
# Content-Type application/json and exactly the body; nothing went
# upstream.
sub is_refused {
    my ($self, $r, $status, $body, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($r->{status}, $status, "$name: status $status");
    Test::More::is_deeply($r->{headers}{'content-type'}, ['application/json'],
                          "$name: one Content-Type, application/json");
    is_bytes($r->{body}, $body, "$name: exact body");
    $self->nothing_upstream($name);
}

# Four tests: the gateway's own answer with one entry whose field is null
# (nginx's 502 and 504 and the like): the status, one Content-Type
# application/json and exactly the body.
sub is_gateway_error {
    my ($r, $status, $message, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($r->{status}, $status, "$name: status $status");
    Test::More::is_deeply($r->{headers}{'content-type'}, ['application/json'],
                          "$name: one Content-Type, application/json");
    is_bytes($r->{body}, '{"errors":[{"message":"' . json_escape($message)
                         . '","field":null}]}', "$name: exact body");
    Test::More::is($r->{headers}{'content-length'}[0], length $r->{body},
                   "$name: Content-Length is the body's");
}

# Three tests: an error answer in SendGrid's shape, with the status, one
# Content-Type application/json and a body {"errors":[...]} whose every
# entry has a non-empty message and a field or a parameter, and nothing
# else.  count => n: exactly n entries; field => 1: each with a field;
# message => qr//: a fourth test, on the first message.  Returns the
# entries as [field or parameter, message] pairs.
sub is_sendgrid_error {
    my ($r, $status, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    Test::More::is($r->{status}, $status, "$name: status $status");
    Test::More::is_deeply($r->{headers}{'content-type'}, ['application/json'],
                          "$name: Content-Type application/json");

    my $body = eval { $json->decode($r->{body}) };
    my @errors = ref $body eq 'HASH' && ref $body->{errors} eq 'ARRAY'
                 ? @{$body->{errors}} : ();
    my $shaped = @errors && join(',', keys %$body) eq 'errors'
        && (!defined $want{count} || @errors == $want{count})
        && !grep { ref $_ ne 'HASH'
                   || !defined $_->{message} || ref $_->{message}
                   || !length $_->{message}
                   || !(exists $_->{field}
                        || !$want{field} && exists $_->{parameter})
                   || grep { !/^(?:message|field|parameter)$/ } keys %$_ }
                 @errors;
    Test::More::ok($shaped, "$name: body is SendGrid-shaped JSON")
        or Test::More::diag($r->{body});

    Test::More::like($shaped ? $errors[0]{message} : '', $want{message},
                     "$name: the error says why")
        if $want{message};

    return [] unless $shaped;
    return [ map { [ exists $_->{field} ? $_->{field} : $_->{parameter},
                     $_->{message} ] } @errors ];
}

sub json_body {
    my ($r) = @_;
    return eval { JSON::PP->new->decode($r->{body}) };
}

sub error_log {
    my ($self) = @_;
    return slurp("$self->{dir}/logs/error.log");
}

# The size of the error log: where the lines of what comes next start.
sub error_log_size {
    my ($self) = @_;
    return -s "$self->{dir}/logs/error.log" // 0;
}

# nginx's own lines of the error log at a level (e.g. 'error'), the
# module's left out, since an error_log_size offset.
sub nginx_log_lines {
    my ($self, $level, $since) = @_;
    my $log = substr($self->error_log, $since // 0);
    return grep { m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[$level\] }
                  && !/sendgrid_integrations:/ }
           split /\n/, $log;
}

# The normalized lines the module logged, oldest first, each
#   { line => the whole line, level => 'error', json => its JSON text,
#     obj => that JSON decoded (strings as characters), after => the text
#     after the JSON (nginx's context) }
# since => an error_log_size: only the lines written after it; all => 1:
# every line of the module, those not in the normalized form with no json
# and no obj.
sub sendgrid_log_lines {
    my ($self, %opt) = @_;
    my $log = $self->error_log;
    $log = substr($log, $opt{since}) if $opt{since};

    my @lines;
    for my $line (split /\n/, $log) {
        next unless $line =~ /sendgrid_integrations:/;

        my ($level) = $line =~ m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] };
        my %l = (line => $line, level => $level);

        if ($line =~ m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: \*\d+ sendgrid_integrations: (\{.*)$}) {
            my $rest = $1;
            my ($obj, $n) = eval { $json->decode_prefix($rest) };
            @l{qw(obj json after)} = defined $n
                ? ($obj, substr($rest, 0, $n), substr($rest, $n))
                : (undef, undef, $rest);
        } elsif (!$opt{all}) {
            next;
        }

        push @lines, \%l;
    }
    return @lines;
}

# $sendgrid_error of the request tagged id as both access logs show it,
# unescaped: { json => ..., plain => ... }, each undef when the request
# was not logged within 5 seconds.
sub sendgrid_error_of {
    my ($self, $id) = @_;
    my %value;
    for my $escaping (sort keys %error_variable_log) {
        my $file = "$self->{dir}/logs/$error_variable_log{$escaping}";
        LOOK: for (1 .. 500 * $SLOW) {
            for (split /\n/, slurp($file)) {
                next unless /^\Q$id\E \[(.*)\]$/;
                my $v = $1;
                if ($escaping eq 'json') {
                    $v = JSON::PP->new->allow_nonref->decode(qq{"$v"});
                } else {
                    $v =~ s/\\x([0-9A-F]{2})/chr hex $1/ge;
                }
                $value{$escaping} = $v;
                last LOOK;
            }
            sleep 0.01;
        }
    }
    return \%value;
}

# A new X-Test-Id for a request.
sub next_test_id {
    my ($self) = @_;
    return sprintf 'req-%04d', ++$self->{test_id};
}

# What was logged for the request tagged id: { lines => every line of the
# module since the error_log_size offset, var => sendgrid_error_of(id),
# offset }.
sub logs_of {
    my ($self, $id, $offset) = @_;
    my $var = $self->sendgrid_error_of($id);
    return { lines => [ $self->sendgrid_log_lines(since => $offset, all => 1) ],
             var => $var, offset => $offset };
}

# Sends a request tagged with a new X-Test-Id and waits until it is
# logged; returns logs_of() with r => the response and id.  Options:
# host, subuser (sent as on-behalf-of), headers, body (sent as
# application/json unless no_type => 1), chunked, http.
sub request_and_logs {
    my ($self, $method, $target, %opt) = @_;
    my $id = $self->next_test_id;
    my $offset = $self->error_log_size;

    my @h = ('X-Test-Id' => $id, @{$opt{headers} // []});
    push @h, Host => $opt{host} if $opt{host};
    push @h, 'on-behalf-of' => $opt{subuser} if defined $opt{subuser};
    push @h, 'Content-Type' => 'application/json'
        if defined $opt{body} && !$opt{no_type};

    my $r = $self->request($method, $target, headers => \@h,
                           body => $opt{body}, chunked => $opt{chunked},
                           http => $opt{http});
    my $x = $self->logs_of($id, $offset);
    @$x{qw(r id)} = ($r, $id);
    return $x;
}

# The normalized form of an error: source, status, operation,
# region, subuser, errors => [[field, message], ...], truncated.
sub normalized_error {
    my (%e) = @_;
    my $x = { source => $e{source}, status => $e{status},
              operation => $e{operation}, region => $e{region},
              subuser => $e{subuser},
              errors => [ map { { field => $_->[0], message => $_->[1] } }
                          @{$e{errors}} ] };
    $x->{truncated} = JSON::PP::true if $e{truncated};
    return $x;
}

# Checks what request_and_logs (or logs_of) returned for a request that
# had an error: one line from the module, at level (default error), in
# the normalized form, whole and within nginx's 2048-byte line, equal to
# normalized_error(%e) (or passing check => sub { ($obj, $json) }), and
# the same JSON in $sendgrid_error under both escapings.  Returns the
# line when its JSON could be read.
sub is_error_line {
    my ($self, $name, $x, %e) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @lines = @{$x->{lines}};
    my $level = $e{level} // 'error';

    Test::More::is(scalar @lines, 1, "$name: one line from the module")
        or Test::More::diag(join "\n", map { $_->{line} } @lines);
    my $l = $lines[0] or return;

    Test::More::like($l->{line},
                     qr/\] \d+#\d+: \*\d+ sendgrid_integrations: \{/,
                     "$name: prefixed 'sendgrid_integrations: '");
    Test::More::is($l->{level}, $level, "$name: logged at [$level]");
    Test::More::ok(defined $l->{json}, "$name: the line is JSON")
        or Test::More::diag($l->{line});
    return unless defined $l->{json};

    Test::More::like($l->{after}, qr/^(?: while [a-z ]+)?, client: /,
                     "$name: the JSON is whole, nginx's context follows");
    Test::More::like($l->{json}, qr/^\{"source":"(?:gateway|upstream)","status":\d{3},"operation":(?:null|"[a-z]+"),"region":"(?:global|eu)","subuser":(?:null|"[^"]*"),"errors":\[/,
                     "$name: members in canonical order");
    Test::More::ok($l->{json} !~ /[\x00-\x1f\x7f]/,
                   "$name: no raw control byte in the line");
    Test::More::cmp_ok(length($l->{line}) + 1, '<=', 2048,
                       "$name: within nginx's 2048-byte line");

    if ($e{check}) {
        $e{check}->($l->{obj}, $l->{json});
    } else {
        Test::More::is_deeply($l->{obj}, normalized_error(%e),
                              "$name: normalized form")
            or Test::More::diag($l->{json});
    }

    Test::More::is($x->{var}{json}, $l->{json},
                   "$name: \$sendgrid_error (escape=json) is the line");
    Test::More::is($x->{var}{plain}, $l->{json},
                   "$name: \$sendgrid_error (default escaping) is the line");
    return $l;
}

# Every file nginx wrote under logs/ (error log, access logs, sanitizer).
sub log_files {
    my ($self) = @_;
    opendir my $d, "$self->{dir}/logs" or return ();
    return map { "$self->{dir}/logs/$_" }
           grep { -f "$self->{dir}/logs/$_" } readdir $d;
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    binmode $fh;
    local $/;
    return <$fh>;
}

# What valgrind's memcheck reported in logs/valgrind.* (one log a process:
# the master, each worker, the parent that nginx leaves when it becomes a
# daemon): every invalid read, write or free and every overlapping copy,
# wherever it is (the module can corrupt what nginx reads), and the
# uninitialised values and definite leaks whose stack passes through the
# module.  Each is returned as the text of its report; the rest is
# counted in a note.
sub valgrind_errors {
    my ($self) = @_;
    my $module = qr/\b(?:ngx_http_sendgrid_\w+|sg_\w+)\b|ngx_http_sendgrid_integrations_module\.so/;
    my (@errors, %other);

    opendir my $d, "$self->{dir}/logs" or return ();
    my @logs = sort grep { /^valgrind\./ } readdir $d;
    closedir $d;

    push @errors, 'no valgrind log: is TEST_NGINX_WRAPPER valgrind with'
                  . ' --log-file=%%DIR%%/logs/valgrind.%p?' unless @logs;

    for my $log (@logs) {
        my $text = slurp("$self->{dir}/logs/$log");
        push @errors, "$log: no ERROR SUMMARY: the process did not exit"
                      . " under valgrind" unless $text =~ /ERROR SUMMARY/;
        # a report is the lines from its title to the next empty one
        for my $report (split /^==\d+== \n/m, $text) {
            my ($title) = $report =~ /^==\d+== (\S.*)$/m or next;
            if ($title =~ /^(?:Invalid (?:read|write|free)|Mismatched free|Source and destination overlap)/
                || ($title =~ /uninitialised|definitely lost/
                    && $report =~ $module))
            {
                push @errors, "$log:\n$report";
            } elsif ($title =~ /^(?:Conditional jump|Use of uninitialised|Syscall param|.*definitely lost)/) {
                $other{$title =~ s/ in loss record.*//r}++;
            }
        }
    }

    Test::More::note("valgrind, outside the module: $_ ($other{$_})")
        for sort keys %other;
    Test::More::note('valgrind logs: ' . scalar(@logs));
    return @errors;
}

# The checks every test file ends with, then Test::More's done_testing.
sub done_testing {
    my ($self) = @_;

    $self->stop;
    $self->{checked} = 1;

    my $log = $self->error_log;
    my @alerts = grep { /\[(crit|alert|emerg)\]/ } split /\n/, $log;
    Test::More::is(scalar @alerts, 0, 'no crit, alert or emerg in the error log')
        or Test::More::diag(join "\n", @alerts);

    my @crashes = grep { /exited on signal/ } split /\n/, $log;
    Test::More::is(scalar @crashes, 0, 'no worker exited on a signal')
        or Test::More::diag(join "\n", @crashes);

    my @reports = grep { m{/sanitizer\.} } $self->log_files;
    my @text = ((grep { /AddressSanitizer|LeakSanitizer|runtime error:/ }
                 split /\n/, $log), @{$self->{sanitizer} // []});
    Test::More::ok(!@reports && !@text, 'no sanitizer report')
        or Test::More::diag(join("\n", @text, map { slurp($_) } @reports));

    if ($ENV{TEST_NGINX_WRAPPER}) {
        my @errors = $self->valgrind_errors;
        Test::More::is(scalar @errors, 0, 'no valgrind error of the module')
            or Test::More::diag(join "\n\n", @errors);
    }

    my @secrets = grep { length } @{$self->{secrets}};
    my @leaks;
    for my $s (@secrets) {
        for my $f ($self->log_files) {
            push @leaks, "$s in $f" if index(slurp($f), $s) >= 0;
        }
        for my $r (@{$self->{responses}}) {
            push @leaks, "$s in a response" if index($r, $s) >= 0;
        }
    }
    Test::More::is(scalar @leaks, 0, 'no secret in a response or a log ('
                         . scalar(@secrets) . ' secrets checked)')
        or Test::More::diag(join "\n", @leaks);

    Test::More::done_testing();
}

1;
