# A rotated key takes effect on reload: while a client sends requests
# without a pause, both key files are rewritten and nginx reloads; no
# request fails, requests sent before the reload carry the old keys, and
# requests sent once the old workers are gone carry the new ones.

use strict;
use warnings;

use Test::More;
use SGTest;
use MIME::Base64;
use POSIX ();
use Time::HiRes qw(sleep time);

my $t = SGTest->new;

my %old = (global => 'SG.global-before-rotation.0123456789abcdef',
           eu     => 'SG.eu-before-rotation.0123456789abcdef');
my %new = (global => 'SG.global-after-rotation.fedcba9876543210',
           eu     => 'SG.eu-after-rotation.fedcba9876543210');

$t->key_file('global.key', "$old{global}\n");
$t->key_file('eu.key', "$old{eu}\n");

$t->start(SGTest::gateway_server(undef, '', location => <<'CONF'));
    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_api_key_file %%DIR%%/eu.key eu;
    sendgrid_subuser_region ~^eu- eu;
CONF

my $post = '{"destination":"Segment","filters":{"email_events":["open"]},'
         . '"properties":{"write_key":"a123456","destination_region":"US"}}';

# request number n: a list, a create, then the same for an EU subuser
sub send_one {
    my ($n) = @_;
    my @h = ('X-Seq' => $n);
    push @h, 'on-behalf-of' => 'eu-team' if $n % 4 >= 2;

    return $n % 2
        ? $t->request(POST => '/v3/marketing/integrations', body => $post,
                      headers => [@h, 'Content-Type' => 'application/json'])
        : $t->request(GET => '/v3/marketing/integrations', headers => \@h);
}

sub region_of { return $_[0] % 4 >= 2 ? 'eu' : 'global' }

sub auth_of {
    my ($u) = @_;
    my @a = SGTest::header_values($u, 'Authorization');
    return @a == 1 ? $a[0] : join(' | ', 'several:', @a);
}

# Four requests from number first, one at a time: each answered, and seen
# upstream with its region's key of %$keys (the "old" or the "new" ones).
sub four_requests {
    my ($when, $first, $keys, $which) = @_;

    for my $n ($first .. $first + 3) {
        my $r = send_one($n);
        is($r->{status}, $n % 2 ? 201 : 200, "$when: request $n answered");
    }

    my @seen = ($t->upstream('global'), $t->upstream('eu'));
    is(scalar @seen, 4, "$when: four requests upstream");
    for my $u (@seen) {
        my ($n) = SGTest::header_values($u, 'X-Seq');
        is(auth_of($u), "Bearer $keys->{region_of($n)}",
           "$when: request $n carries the $which " . region_of($n) . ' key');
    }
}


# before: the old keys

four_requests('before reload', 0, \%old, 'old');


# during: a client without pause, until 10 requests have been sent after
# the reload was seen complete (at most 300 requests, 30 seconds)

my $results = $t->dir . '/client-results';
my $reload_seen = $t->dir . '/reload-seen';
my $responses = $t->dir . '/client-responses';

my $pid = fork;
die "fork: $!" unless defined $pid;

if ($pid == 0) {
    # the child must not run the harness' DESTROY: it would stop nginx
    my $ok = eval {
        open my $res, '>', $results or die "$results: $!";
        open my $raw, '>', $responses or die "$responses: $!";
        $res->autoflush(1);
        my ($started, $after) = (time, 0);
        for my $n (100 .. 399) {
            $after++ if -e $reload_seen;
            last if $after > 10 || time - $started > 30;
            my $sent = time;
            my $r = eval { send_one($n) };
            my $status = $r ? $r->{status} : 0;
            printf $res "%d %.6f %.6f %d\n", $n, $sent, time, $status;
            print $raw encode_base64($r ? $r->{raw} : '', ''), "\n";
            sleep 0.005;
        }
        close $res;
        close $raw;
        1;
    };
    POSIX::_exit($ok ? 0 : 1);
}

# let the client get 10 answers (on a busy machine that takes a while),
# then rotate both keys and reload
for (1 .. 400) {
    last if (() = SGTest::slurp($results) =~ /\n/g) >= 10;
    sleep 0.025;
}

my @old_workers = $t->workers;
ok(@old_workers > 0, 'old workers found: ' . join(' ', @old_workers));

$t->key_file('global.key', "$new{global}\n");
$t->key_file('eu.key', "\n  $new{eu}\t\n");

# the reload is complete when a new worker runs and no old one is left
my $signalled = time;
my $reloaded = $t->reload(wait => 1);
ok($reloaded, 'the old workers are gone and new ones run')
    or diag(sprintf 'workers now: %s', join ' ', $t->workers);
$reloaded //= time;
$t->write_file('reload-seen', '');

waitpid($pid, 0);
is($?, 0, 'the client loop finished');


# what the client got, what the upstreams saw

my @sent;
open my $fh, '<', $results or die "$results: $!";
while (<$fh>) {
    my ($n, $at, $done, $status) = split;
    push @sent, { n => $n, at => $at, done => $done, status => $status };
}
close $fh;

my @bad = grep { $_->{status} != ($_->{n} % 2 ? 201 : 200) } @sent;
is(scalar @bad, 0, 'no request failed (' . scalar(@sent) . ' sent)')
    or diag(join "\n", map { "request $_->{n}: status $_->{status}" } @bad);

my @before = grep { $_->{done} < $signalled } @sent;
my @after = grep { $_->{at} > $reloaded } @sent;
ok(@before >= 10, scalar(@before) . ' requests answered before the reload');
ok(@after >= 10, scalar(@after) . ' requests sent after the reload completed');

my %upstream;
for my $region (qw(global eu)) {
    for my $u ($t->upstream($region)) {
        my ($n) = SGTest::header_values($u, 'X-Seq');
        push @{$upstream{$n}}, { region => $region, auth => auth_of($u) };
    }
}

my (@wrong_region, @unseen, @not_old, @not_new, @neither);
for my $s (@sent) {
    my $seen = $upstream{$s->{n}} // [];
    if (@$seen != 1) {
        push @unseen, "$s->{n} seen " . scalar(@$seen) . ' times';
        next;
    }

    my $region = region_of($s->{n});
    my $auth = $seen->[0]{auth};
    push @wrong_region, $s->{n} if $seen->[0]{region} ne $region;

    push @not_old, "$s->{n}: $auth"
        if $s->{done} < $signalled && $auth ne "Bearer $old{$region}";
    push @not_new, "$s->{n}: $auth"
        if $s->{at} > $reloaded && $auth ne "Bearer $new{$region}";
    push @neither, "$s->{n}: $auth"
        if $auth ne "Bearer $old{$region}" && $auth ne "Bearer $new{$region}";
}

is(scalar @unseen, 0, 'every request reached an upstream exactly once')
    or diag(join "\n", @unseen);
is(scalar keys %upstream, scalar @sent, 'the upstreams saw nothing else');
is(scalar @wrong_region, 0, 'every request reached its region')
    or diag("@wrong_region");
is(scalar @neither, 0, 'every request carried its region\'s old or new key')
    or diag(join "\n", @neither);
is(scalar @not_old, 0, 'requests answered before the reload: old keys')
    or diag(join "\n", @not_old);
is(scalar @not_new, 0, 'requests sent after the reload: new keys')
    or diag(join "\n", @not_new);

my @new_seen = grep { $_->{auth} eq "Bearer $new{$_->{region}}" }
               map { @$_ } values %upstream;
ok(scalar(grep { $_->{region} eq 'global' } @new_seen),
   'the global upstream saw the new global key');
ok(scalar(grep { $_->{region} eq 'eu' } @new_seen),
   'the EU upstream saw the new EU key');

# no key in anything the client loop received
my $raw = SGTest::slurp($responses);
my @leaks;
for my $line (split /\n/, $raw) {
    my $text = decode_base64($line);
    push @leaks, grep { index($text, $_) >= 0 } values %old, values %new;
}
is(scalar @leaks, 0, 'no key in a response to the client loop')
    or diag("@leaks");


# after: the new keys, still

four_requests('after reload', 1000, \%new, 'new');

$t->done_testing;
