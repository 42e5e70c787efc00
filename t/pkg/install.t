# The Debian package on a clean system: a minimal chroot of the Debian
# release this machine runs, made with debootstrap, where apt installs the
# .deb and, for its nginx ABI dependency, Debian's nginx.  There, nginx -t
# and one request through a gateway that loads the module as
# /etc/nginx/nginx.conf does, with an include of
# /etc/nginx/modules-enabled/*.conf, and an invalid body it refuses;
# sendgrid-integrations-validate on a valid body and on that invalid one,
# answering as the gateway did; the module disabled by hand and kept
# disabled by a reinstall, enabled again, removed and purged; and apt
# refusing the package beside an nginx of another ABI.
#
# Needs root (debootstrap, chroot) and the Debian mirror of
# /etc/apt/sources.list.d/debian.sources (or /etc/apt/sources.list).  The
# pristine chroot is kept as a tarball in build/pkgtest/, so that only the
# first run waits for debootstrap; every run unpacks a fresh copy, and
# removes it when every test passed.  No package script starts a service
# there (policy-rc.d says no); the only servers are the test's own, on
# loopback.  TEST_DEB names another .deb than make deb's.

use strict;
use warnings;

use Fcntl qw(:flock);
use File::Basename qw(basename);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use Test::More;
use SGTest qw(body_error create_body header_values);
use SGBodyCases;

plan skip_all => 'needs root: debootstrap and chroot' if $> != 0;

my $top = $SGTest::TOP;
my $work = "$top/build/pkgtest";
my $root = "$work/root";

my $package = 'libnginx-mod-http-sendgrid-integrations';
my $snippet = '/usr/share/nginx/modules-available/'
            . 'mod-http-sendgrid-integrations.conf';
my $link = '/etc/nginx/modules-enabled/50-mod-http-sendgrid-integrations.conf';
my $so = '/usr/lib/nginx/modules/ngx_http_sendgrid_integrations_module.so';
my $doc = "/usr/share/doc/$package";
my $validator = '/usr/bin/sendgrid-integrations-validate';
my $manual = '/usr/share/man/man1/sendgrid-integrations-validate.1.gz';

# two cases of the body table, as t/60-body.t sends them through nginx and
# t/63-body-cli.t gives them to the command
my %cases = map { $_->{name} => $_ } SGBodyCases::cases();
my ($valid, $invalid) =
    map { $cases{$_} // die "SGBodyCases: no case \"$_\"\n" }
    'destination Segment', 'failures in reverse document order';

# apt and dpkg in the chroot: no question asked, messages in English;
# chroot and debootstrap are in /usr/sbin
$ENV{DEBIAN_FRONTEND} = 'noninteractive';
$ENV{LC_ALL} = 'C';
$ENV{PATH} = "/usr/sbin:/usr/bin:/sbin:/bin:$ENV{PATH}";

make_path($work);
open my $lock, '>', "$work/.lock" or die "$work/.lock: $!";
flock $lock, LOCK_EX;


# Runs a command; returns (exit code, output and errors).
sub run {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDERR, '>&', \*STDOUT;
        exec(@cmd) or exit 127;
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# Runs a command the test cannot go on without; returns its output, the
# last newline dropped.
sub must {
    my ($rc, $out) = run(@_);
    die "@_: exit $rc\n$out" if $rc;
    return $out =~ s/\n\z//r;
}

sub in_root { return run('chroot', $root, @_) }

sub slurp { return SGTest::slurp(@_) }

sub put {
    my ($path, $text, $mode) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
    chmod $mode // 0644, $path;
}

# An os-release field of this machine, e.g. VERSION_CODENAME.
sub os_release {
    my ($field) = @_;
    my ($value) = slurp('/etc/os-release') =~ /^$field="?([^"\n]*)/m;
    return $value // die "no $field in /etc/os-release";
}

# This machine's apt sources of Debian's binary packages, and their first
# mirror.
sub apt_sources {
    for my $file ('/etc/apt/sources.list.d/debian.sources',
                  '/etc/apt/sources.list') {
        my $text = slurp($file);
        my ($mirror) = $text =~ /^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)/m
            or next;
        return ($file, $mirror);
    }
    die "no Debian mirror in /etc/apt/sources.list{,.d/debian.sources}";
}

# Processes whose root directory is the chroot.
sub processes_in_root {
    opendir my $d, '/proc' or return ();
    return grep { /^\d+$/ && (readlink("/proc/$_/root") // '') eq $root }
           readdir $d;
}

# The entries of a directory in the chroot.
sub entries {
    my ($dir) = @_;
    opendir my $d, "$root$dir" or return ();
    return sort grep { !/^\.\.?$/ } readdir $d;
}

sub remove_root {
    # the link that puts the harness's paths inside the chroot goes first,
    # so that no later step can meet it
    unlink "$root$root/tmp";
    remove_tree($root);
}


# the package make deb built, or TEST_DEB

my $version = must('dpkg-parsechangelog', '-l', "$top/debian/changelog",
                   '-S', 'Version');
my $arch = must('dpkg', '--print-architecture');
my $deb = $ENV{TEST_DEB}
          || "$top/build/deb/${package}_${version}_${arch}.deb";
-f $deb or die "$deb: no such package (make deb builds it)\n";

# the ABI of the nginx-dev sources the module is built against
my ($abi) = slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
            =~ /^nginx:abi=(\S+)/m
    or die "no nginx:abi in nginx-dev's libnginx-mod.abisubstvars";

my %control = map { $_ => must('dpkg-deb', '-f', $deb, $_) }
              qw(Package Version Architecture Depends Recommends);

is($control{Package}, $package, 'control: Package');
is($control{Version}, $version, 'control: Version is debian/changelog\'s');
is($control{Architecture}, $arch, 'control: Architecture');
like($control{Depends}, qr/(?:^|, )\Q$abi\E(?:,|$)/,
     "control: Depends on $abi, nginx-dev's ABI");
like($control{Depends}, qr/(?:^|, )libjansson4\b/,
     'control: Depends on libjansson4 (dpkg-shlibdeps)');
is($control{Recommends}, 'nginx', 'control: Recommends nginx');


# a fresh chroot from the pristine tarball, made once with debootstrap

my $suite = os_release('VERSION_CODENAME');
my ($sources, $mirror) = apt_sources();
my $base = "$work/$suite-minbase.tar";

if (!-f $base) {
    my $tmp = "$work/debootstrap";
    remove_tree($tmp);
    my ($rc, $out) = run('debootstrap', '--variant=minbase', $suite, $tmp,
                         $mirror);
    die "debootstrap $suite $mirror: exit $rc\n" . substr($out, -3000)
        if $rc;
    must('tar', '-C', $tmp, '--numeric-owner', '-cf', "$base.tmp", '.');
    rename "$base.tmp", $base or die "$base: $!";
    remove_tree($tmp);
}

!processes_in_root() or die "processes still run in $root";
remove_root();
make_path($root);
must('tar', '-C', $root, '--numeric-owner', '-xpf', $base);

# the binary sources of this machine; no package script starts a service
unlink "$root/etc/apt/sources.list";
copy($sources, "$root/etc/apt/sources.list.d/" . basename($sources))
    or die "$sources: $!";
put("$root/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0755);

# the harness's prefix (under the chroot's /tmp) at the same path inside
make_path("$root$root");
symlink '/tmp', "$root$root/tmp" or die "$root$root/tmp: $!";

copy($deb, "$root/tmp/") or die "$deb: $!";
my $deb_inside = '/tmp/' . basename($deb);


# install, as an operator would

my ($rc, $out) = in_root('apt-get', 'update');
is($rc, 0, 'apt-get update in the chroot') or diag $out;

($rc, $out) = in_root('apt-get', 'install', '-y', '--no-install-recommends',
                      $deb_inside);
is($rc, 0, "apt-get install ./" . basename($deb)) or diag $out;

($rc, $out) = in_root('dpkg-query', '-W', '-f', '${Status}|${Provides}',
                      'nginx');
like($out, qr/^install ok installed\|.*\b\Q$abi\E\b/,
     "apt brought Debian's nginx, which provides $abi");

is_deeply([ processes_in_root() ], [], 'no package started a service');

my %files = map { $_ => 1 } split /\n/, (in_root('dpkg', '-L', $package))[1];
ok($files{$_}, "installs $_")
    for $so, $snippet, $validator, $manual, "$doc/README.md.gz",
        "$doc/examples/nginx.conf.example", "$doc/copyright",
        "$doc/changelog.gz";

is(slurp("$root$snippet"),
   "load_module modules/ngx_http_sendgrid_integrations_module.so;\n",
   'the load snippet');
is(readlink("$root$link"), $snippet,
   'the maintainer script enabled it in /etc/nginx/modules-enabled');

($rc, $out) = in_root('nginx', '-t');
is($rc, 0, "nginx -t with Debian's /etc/nginx/nginx.conf") or diag $out;


# a gateway loading the module through the snippet, one request through it

my $wrapper = "$work/nginx";
put($wrapper, "#!/bin/sh\n# Debian's nginx in the test's chroot\n"
              . "exec chroot $root /usr/sbin/nginx \"\$\@\"\n", 0755);

$ENV{TMPDIR} = "$root/tmp";
$ENV{TEST_NGINX_BINARY} = $wrapper;
$ENV{TEST_NGINX_MODULE} = '';

# the module loaded as /etc/nginx/nginx.conf loads it, among the
# harness's main-context lines
my $t = SGTest->new;
push @{$t->{main}}, 'include /etc/nginx/modules-enabled/*.conf;';

# The snippet's load_module path is relative to nginx's prefix: Debian's
# prefix, /usr/share/nginx, has a modules link to /usr/lib/nginx/modules,
# and so has the harness's (nginx -p).
symlink '/usr/lib/nginx/modules', $t->dir . '/modules'
    or die "modules link: $!";

my $key = 'SG.package-test-key.0123456789abcdef';
$t->key_file('global.key', "$key\n");
$t->mock($_) for qw(global eu);

my $gateway = SGTest::gateway_server(undef, '', location => <<'CONF');
    sendgrid_api_key_file %%DIR%%/global.key;
CONF

($rc, $out) = $t->test_config($gateway);
is($rc, 0, 'nginx -t with the gateway configuration') or diag $out;

$t->start($gateway);

my $body = create_body(write_key => 'wk-package-test');
my $r = $t->request(POST => '/v3/marketing/integrations',
                    headers => [ 'Content-Type' => 'application/json',
                                 'Authorization' => 'Bearer SG.client-own' ],
                    body => $body);
$t->secret('SG.client-own');

is($r->{status}, 201, 'the client gets the upstream\'s 201');
is(SGTest::json_body($r)->{integration_id}, '5a1234',
   'the client gets the upstream\'s body');

my $u = $t->forwarded_once('global', 'create');
is("$u->{method} $u->{target}", 'POST /v3/marketing/integrations',
   'upstream: method and target');
is($u->{body}, $body, 'upstream: the body byte for byte');
is_deeply([ header_values($u, 'Authorization') ], [ "Bearer $key" ],
          'upstream: the key injected, the client\'s Authorization gone');

my $refused = SGBodyCases::request($t, $invalid);
$t->is_refused($refused, 400, body_error($invalid->{message}),
               "an invalid body ($invalid->{name})");

$t->stop;


# sendgrid-integrations-validate, found on PATH as a CI step runs it: what
# it prints, standard output and error together, and its exit code

# Runs the command in the chroot on the body of a case, read from a file,
# with more arguments; returns (exit code, output and errors).
sub validate {
    my ($c, @args) = @_;
    put("$root/tmp/body.json", $c->{body});
    return in_root('sendgrid-integrations-validate', '--operation', $c->{op},
                   $c->{strict} ? '--strict' : (), @args, '/tmp/body.json');
}

($rc, $out) = validate($valid);
is($rc, 0, 'validate, a valid body: exit 0');
is($out, '', 'validate, a valid body: no output');

($rc, $out) = validate($invalid);
is($rc, 1, 'validate, an invalid body: exit 1');
is($out, "$invalid->{message}\n",
   'validate, an invalid body: the gateway\'s message, one line');

($rc, $out) = validate($invalid, '--json');
is($rc, 1, 'validate --json, an invalid body: exit 1');
is($out, "$refused->{body}\n",
   'validate --json, an invalid body: the gateway\'s answer, byte for byte');


# disabled by hand, kept so by a reinstall, enabled again

unlink "$root$link" or die "$root$link: $!";
($rc, $out) = in_root('apt-get', 'install', '-y', '--reinstall', $deb_inside);
is($rc, 0, 'apt-get reinstall') or diag $out;
ok(!-e "$root$link" && !-l "$root$link",
   'a reinstall or upgrade keeps the module disabled');

($rc, $out) = $t->test_config($gateway);
like($out, qr/unknown directive "sendgrid_\w+"/,
     'disabled: nginx -t does not know the module\'s directives')
    or diag $out;

must('chroot', $root, 'ln', '-s', $snippet, $link);
($rc, $out) = $t->test_config($gateway);
is($rc, 0, 'enabled again with ln -s: nginx -t passes') or diag $out;


# removed, then purged

($rc, $out) = in_root('apt-get', 'remove', '-y', $package);
is($rc, 0, 'apt-get remove') or diag $out;
ok(!-e "$root$so", 'removed: the module is gone');
ok(!-e "$root$validator", 'removed: the command is gone');
is_deeply([ grep { /\.conf$/ } entries('/etc/nginx/modules-enabled') ], [],
          'removed: no snippet enabled');

($rc, $out) = $t->test_config($gateway);
like($out, qr/unknown directive "sendgrid_\w+"/,
     'removed: nginx -t does not know the module\'s directives')
    or diag $out;

($rc, $out) = in_root('apt-get', 'purge', '-y', $package);
is($rc, 0, 'apt-get purge') or diag $out;
is_deeply([ entries('/etc/nginx/modules-enabled') ], [],
          'purged: /etc/nginx/modules-enabled is as nginx left it, empty');
($rc, $out) = in_root('dpkg-query', '-W', $package);
like($out, qr/^dpkg-query: no packages found matching \Q$package\E$/,
     'purged: dpkg knows nothing of it') or diag $out;


# apt refuses the package beside an nginx of another ABI: nginx as dpkg
# knows it, its version and ABI changed, as if a newer nginx had come in

my $status = slurp("$root/var/lib/dpkg/status");
my $changed = ($status =~ s{^(Package: nginx\n(?:.+\n)*?)Version: .+\n}
                           {$1Version: 1.99.0-1\n}m)
            + ($status =~ s{^(Package: nginx\n(?:.+\n)*?Provides: .*)\Q$abi\E}
                           {$1nginx-abi-1.99.0-1}m);
is($changed, 2, 'a dpkg status with nginx 1.99.0-1, nginx-abi-1.99.0-1');
put("$root/tmp/status.other-abi", $status);

($rc, $out) = in_root('apt-get', '-s', 'install', $deb_inside);
is($rc, 0, "apt accepts the package beside nginx of $abi") or diag $out;
like($out, qr/^Inst \Q$package\E /m, '... and would install it');

($rc, $out) = in_root('apt-get', '-s',
                      '-o', 'Dir::State::status=/tmp/status.other-abi',
                      'install', $deb_inside);
is($rc, 100, 'apt refuses the package beside nginx of another ABI');
like($out, qr/^ \Q$package\E : Depends: \Q$abi\E$/m,
     "... naming the dependency on $abi") or diag $out;


is_deeply([ processes_in_root() ], [], 'nothing left running in the chroot');

$t->done_testing;

remove_root() if Test::More->builder->is_passing && !$ENV{TEST_NGINX_LEAVE};
